"""Loop repair for models that cannot condition the last frame (SVD; Wan without ``last_image``).

``repair_loop(frames)`` finds the window of the clip whose end is closest to its start relative to
the clip's own typical frame-to-frame step (the same idea as ``generation.quality.loop_seam``:
``max(0, d(last, first) / median step - 1)``, 0 = seamless), trims to it, and cross-fades the
window's tail into its head so the jump at the loop point is hidden. ``retime_loop`` then
resamples a loop to the frame count the request asked for, interpolating cyclically so the
loop stays closed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import Frames
from generation.quality import loop_seam

# Frames are compared at this long side when searching for the window (speed, not precision).
_SEARCH_SIDE = 64
# A loop_seam this small is invisible: such a clip is left as it is.
SEAMLESS = 0.05
# Like ``loop_seam``: a still window has no typical step, so any seam counts as a full jump.
_STEP_FLOOR = 0.05


@dataclass(frozen=True)
class LoopRepair:
    frames: Frames
    start: int  # window start in the input clip
    end: int  # window end (exclusive) in the input clip
    fade: int  # frames cross-faded at the seam
    seam_before: float  # loop_seam of the untouched clip
    seam_after: float  # loop_seam of the repaired loop

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "trim+crossfade" if self.fade else "unchanged",
            "window": [self.start, self.end],
            "fade_frames": self.fade,
            "loop_seam_before": round(self.seam_before, 4),
            "loop_seam_after": round(self.seam_after, 4),
        }


def _check(frames: Frames, minimum: int) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} frames, got {frames.shape[0]}")


def _small(frames: Frames) -> NDArray[np.float32]:
    """Frames shrunk for comparison, as float32 (T, h, w, 3)."""
    _t, h, w, _ = frames.shape
    scale = min(1.0, _SEARCH_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return np.stack(small).astype(np.float32)


def _distance_matrix(frames: Frames) -> NDArray[np.float64]:
    """Mean absolute difference between every pair of frames (T, T)."""
    small = _small(frames).reshape(frames.shape[0], -1)
    t = small.shape[0]
    dist = np.zeros((t, t), dtype=np.float64)
    for i in range(t):
        dist[i] = np.abs(small - small[i]).mean(axis=1)
    return dist


def best_loop_window(frames: Frames, min_length: int) -> tuple[int, int]:
    """``(start, end)`` of the window (``end`` exclusive, length >= ``min_length``) that loops best.

    A window's score is ``max(0, d(last, start) / median step - 1)`` over the window's own steps;
    ties go to the longer window (more motion, less repetition).
    """
    t = frames.shape[0]
    min_length = max(3, min(min_length, t))
    _check(frames, min_length)
    dist = _distance_matrix(frames)
    steps = np.array([dist[i, i + 1] for i in range(t - 1)])
    best: tuple[float, int, int, int] | None = None
    for start in range(t - min_length + 1):
        for end in range(start + min_length, t + 1):
            # The median (np.median would import numpy.ma on first use: ~20 ms).
            step = max(float(np.quantile(steps[start : end - 1], 0.5)), _STEP_FLOOR)
            score = max(0.0, float(dist[end - 1, start]) / step - 1.0)
            key = (round(score, 6), -(end - start), start, end)
            if best is None or key < best:
                best = key
    assert best is not None
    return best[2], best[3]


def crossfade_loop(frames: Frames, fade: int) -> Frames:
    """Blend the last ``fade`` frames into the first ``fade`` ones; the result loops smoothly.

    Output frame ``j`` is ``frames[fade + j]`` for the body; the tail blends ``frames[n - fade + k]``
    towards ``frames[k]`` with a weight rising to ``fade / (fade + 1)``, so the last output frame
    is nearly ``frames[fade - 1]``, whose natural successor ``frames[fade]`` opens the loop.
    Returns ``n - fade`` frames.
    """
    n = frames.shape[0]
    if fade <= 0:
        return frames.copy()
    if n < 2 * fade + 1:
        raise ValueError(f"a {fade}-frame cross-fade needs at least {2 * fade + 1} frames, got {n}")
    body = frames[fade : n - fade].astype(np.float32)
    tail = []
    for k in range(fade):
        weight = (k + 1) / (fade + 1)
        end = frames[n - fade + k].astype(np.float32)
        head = frames[k].astype(np.float32)
        tail.append((1.0 - weight) * end + weight * head)
    out = np.concatenate([body, np.stack(tail)], axis=0)
    result: Frames = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return result


def repair_loop(
    frames: Frames, min_fraction: float = 0.6, fade_fraction: float = 0.2
) -> LoopRepair:
    """Trim ``frames`` to its best loop window and cross-fade the seam.

    The window is at least ``min_fraction`` of the clip; the cross-fade covers ``fade_fraction``
    of the window (at least one frame). A clip that already loops (``loop_seam`` at most
    ``SEAMLESS``) is returned as it was, and so is one the repair would not improve.
    """
    _check(frames, 3)
    n = frames.shape[0]
    seam_before = loop_seam(frames)
    if seam_before <= SEAMLESS:
        return LoopRepair(frames.copy(), 0, n, 0, seam_before, seam_before)  # already seamless
    min_length = max(3, math.ceil(n * min_fraction))
    start, end = best_loop_window(frames, min_length)
    window = frames[start:end]
    fade = max(1, min(round(window.shape[0] * fade_fraction), (window.shape[0] - 1) // 2))
    repaired = crossfade_loop(window, fade)
    seam_after = loop_seam(repaired)
    if seam_after >= seam_before:
        return LoopRepair(frames.copy(), 0, n, 0, seam_before, seam_before)
    return LoopRepair(repaired, start, end, fade, seam_before, seam_after)


def retime_loop(frames: Frames, count: int) -> Frames:
    """Resample a loop to ``count`` frames, interpolating cyclically (frame after last = first)."""
    _check(frames, 1)
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    n = frames.shape[0]
    if count == n:
        return frames.copy()
    out = np.empty((count, *frames.shape[1:]), dtype=np.uint8)
    for k in range(count):
        pos = k * n / count
        i = math.floor(pos)
        frac = pos - i
        a = frames[i % n]
        if frac < 1e-6:
            out[k] = a
            continue
        b = frames[(i + 1) % n]
        mixed = (1.0 - frac) * a.astype(np.float32) + frac * b.astype(np.float32)
        out[k] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out
