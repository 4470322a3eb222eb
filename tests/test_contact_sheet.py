"""The contact sheet's labels: drawn, coloured by the take's flag, and inside their columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from generation.contact_sheet import (
    BACKGROUND,
    FLAG,
    GAP,
    LABEL_WIDTH,
    TEXT,
    THUMB_HEIGHT,
    SheetRow,
    write_contact_sheet,
)
from generation.quality import Scores

SCORES = Scores(identity=0.987, loop_seam=12.345, flicker=0.02, motion=0.31)


def _near(pixels: NDArray[np.uint8], colour: tuple[int, int, int]) -> int:
    """How many pixels are within 40 levels of ``colour`` on every channel."""
    difference = np.abs(pixels.astype(np.int16) - np.array(colour, dtype=np.int16))
    return int((difference.max(axis=-1) < 40).sum())


def test_each_row_is_labelled_and_a_flagged_rank_is_drawn_in_the_flag_colour(
    tmp_path: Path,
) -> None:
    frames = np.full((24, 64, 48, 3), 90, dtype=np.uint8)
    path = write_contact_sheet(
        [
            SheetRow(1, frames, SCORES, rank=1),
            SheetRow(2, frames, SCORES, rank=2, flagged=True),
        ],
        tmp_path / "sheet.png",
    )
    sheet = np.asarray(Image.open(path).convert("RGB"))
    row_height = THUMB_HEIGHT + 14 + GAP
    first = sheet[GAP : GAP + row_height, :LABEL_WIDTH]
    second = sheet[GAP + row_height : GAP + 2 * row_height, :LABEL_WIDTH]
    # Six lines of text in each label column; only the flagged row has the flag colour.
    assert _near(first, TEXT) > 200 and _near(second, TEXT) > 200
    assert _near(first, FLAG) == 0 and _near(second, FLAG) > 20
    # Each thumbnail has its frame label under it.
    under = sheet[GAP + THUMB_HEIGHT : GAP + THUMB_HEIGHT + 14, LABEL_WIDTH:]
    assert _near(under, TEXT) > 100


def test_the_longest_frame_label_stays_under_a_portrait_thumbnail(tmp_path: Path) -> None:
    # 9:16 frames give the narrowest thumbnails (90 px at 160 px high); the blink label of a
    # two-digit frame is the longest one and must not run into the next column.
    frames = np.full((72, 320, 180, 3), 90, dtype=np.uint8)
    path = write_contact_sheet(
        [SheetRow(1, frames, SCORES, rank=1, blink_peak=71)], tmp_path / "sheet.png"
    )
    sheet = np.asarray(Image.open(path).convert("RGB"))
    strip = sheet[GAP + THUMB_HEIGHT : GAP + THUMB_HEIGHT + 14]
    thumb_w = round(180 * THUMB_HEIGHT / 320)
    for column in range(6):
        left = LABEL_WIDTH + GAP + column * (thumb_w + GAP)
        gap = strip[:, left + thumb_w : left + thumb_w + GAP]
        assert (gap == np.array(BACKGROUND, dtype=np.uint8)).all(), f"label {column} overflows"
    assert _near(strip, TEXT) > 100
