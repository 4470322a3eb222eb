"""Loop repair for models that cannot condition the last frame: trim, cross-fade, retime."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from generation.loop_repair import (
    SEAMLESS,
    best_loop_window,
    crossfade_loop,
    repair_loop,
    retime_loop,
)
from generation.quality import loop_seam


def moving_square(positions: list[int], size: int = 48) -> NDArray[np.uint8]:
    """A bright square on a textured background, one frame per x position."""
    rng = np.random.default_rng(3)
    background = rng.integers(40, 90, size=(size, size, 3), dtype=np.uint8)
    frames = []
    for x in positions:
        frame = background.copy()
        frame[16:32, x : x + 12] = 230
        frames.append(frame)
    return np.stack(frames)


def test_best_window_finds_the_part_that_returns_to_its_start() -> None:
    # Out and back (frames 0..12 return to x=4), then drifting away: the window is the return.
    xs = [4, 6, 8, 10, 12, 14, 16, 14, 12, 10, 8, 6, 4, 7, 10, 13, 16, 19, 22, 25]
    clip = moving_square(xs)
    start, end = best_loop_window(clip, min_length=10)
    assert end - start >= 10
    assert xs[end - 1] - xs[start] in (-2, 0, 2)  # ends one step away from where it starts


def test_repair_makes_a_drifting_clip_loop() -> None:
    clip = moving_square([2 + 2 * i for i in range(16)])  # drifts right, never comes back
    before = loop_seam(clip)
    repaired = repair_loop(clip)
    assert before > 3.0
    assert repaired.seam_after < before
    assert repaired.seam_after == pytest.approx(loop_seam(repaired.frames))
    assert repaired.frames.dtype == np.uint8
    assert repaired.frames.shape[1:] == clip.shape[1:]
    assert repaired.fade >= 1
    info = repaired.to_json()
    assert info["method"] == "trim+crossfade" and info["window"] == [repaired.start, repaired.end]


def test_a_clip_that_already_loops_is_left_alone() -> None:
    clip = moving_square([4, 6, 8, 10, 12, 10, 8, 6])  # the last step leads back to the start
    repaired = repair_loop(clip)
    assert repaired.seam_before <= SEAMLESS
    assert (repaired.start, repaired.end, repaired.fade) == (0, 8, 0)
    assert np.array_equal(repaired.frames, clip)


def test_crossfade_blends_the_tail_into_the_head() -> None:
    clip = np.stack([np.full((2, 2, 3), v, dtype=np.uint8) for v in (0, 10, 20, 30, 40, 50, 60)])
    out = crossfade_loop(clip, fade=2)
    values = [int(f[0, 0, 0]) for f in out]
    # body frames[2:5] = 20, 30, 40; tail: 50 towards 0 (1/3), 60 towards 10 (2/3)
    assert values == [20, 30, 40, 33, 27]
    assert crossfade_loop(clip, 0).shape == clip.shape
    with pytest.raises(ValueError, match="cross-fade needs"):
        crossfade_loop(clip[:4], fade=2)


def test_retime_loop_interpolates_cyclically() -> None:
    clip = np.stack([np.full((2, 2, 3), v, dtype=np.uint8) for v in (0, 100, 200)])
    out = retime_loop(clip, 6)
    assert [int(f[0, 0, 0]) for f in out] == [0, 50, 100, 150, 200, 100]  # last blends to first
    assert retime_loop(clip, 3).shape == clip.shape
    assert retime_loop(clip, 2).shape == (2, 2, 2, 3)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((5, 4, 4), dtype=np.uint8), np.zeros((2, 4, 4, 3), dtype=np.uint8)],
)
def test_bad_clips_are_rejected(bad: NDArray[np.uint8]) -> None:
    with pytest.raises(ValueError, match="frames"):
        repair_loop(bad)


def test_retime_needs_a_positive_count() -> None:
    with pytest.raises(ValueError, match="count"):
        retime_loop(np.zeros((3, 2, 2, 3), dtype=np.uint8), 0)
