"""A take thinned to its contact-sheet frames draws the same sheet as the full take."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from generation.contact_sheet import (
    THUMB_HEIGHT,
    SheetRow,
    _thumb,
    pick_frames,
    thin_for_sheet,
    write_contact_sheet,
)
from generation.quality import Scores


def test_a_thinned_take_draws_the_same_sheet_as_the_full_take(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(72, 64, 48, 3), dtype=np.uint8)
    scores = Scores(identity=0.99, loop_seam=0.0, flicker=0.02, motion=0.3)
    picks, kept = thin_for_sheet(frames, blink_peak=37)
    assert picks == tuple(pick_frames(72, 6, 37)) and 37 in picks
    assert kept.shape == (len(picks), THUMB_HEIGHT, 120, 3)  # thumbnails, made as it is thinned
    assert all(np.array_equal(kept[i], _thumb(frames[p])) for i, p in enumerate(picks))
    full = write_contact_sheet(
        [SheetRow(1, frames, scores, rank=1, blink_peak=37)], tmp_path / "full.png"
    )
    thin = write_contact_sheet(
        [SheetRow(1, kept, scores, rank=1, blink_peak=37, indices=picks)], tmp_path / "thin.png"
    )
    assert np.array_equal(np.asarray(Image.open(full)), np.asarray(Image.open(thin)))
