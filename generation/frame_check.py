"""A check of generated clips before export and scoring: NaN/inf or flat (black, blank) frames.

fp16/bf16 video VAEs can overflow and decode to NaN, which becomes an all-black clip once cast to
8 bits. Such a clip is a failed take, never a deliverable loop:

    fault = clip_fault(frames)          # None, or a short reason ("NaN or inf in ...")
    takes = screen_takes(takes, warnings)  # drops failed takes (one warning each)

``clip_fault`` takes frames (T, H, W, 3) as uint8 or as floats in 0..1. A frame is *flat* when the
standard deviation of its pixel values is under ``FLAT_LEVELS`` 8-bit levels (a photo never is);
a clip is failed when a quarter or more of its frames are flat. ``screen_takes`` also drops takes
a backend marked failed (``Take.info["failed"]``, a reason) and raises ``GenerationFailed`` when
no take is left, so a job with only broken takes fails with the reason instead of delivering one.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import Take
from livingphoto.errors import GenerationFailed

# Standard deviation (8-bit levels) under which a frame is one flat colour.
FLAT_LEVELS = 2.0
# Fraction of flat frames from which a clip counts as failed.
FLAT_FRACTION = 0.25
# Frames are sampled on this grid step for the flatness check: a flat frame stays flat, and a
# 512 px frame still gives ~3000 pixels (4 ms a take instead of 12 at a step of 4).
_STRIDE = 8


def clip_fault(frames: NDArray[Any]) -> str | None:
    """Why ``frames`` is not a usable clip (NaN/inf, or mostly flat frames), or None if it is.

    Raises ``ValueError`` for an array that is not (T, H, W, 3).
    """
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise ValueError(f"frames must have shape (T, H, W, 3), got {array.shape}")
    scale = 1.0
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
        if bad.any():
            return f"NaN or inf in {int(bad.sum())} of {array.shape[0]} decoded frames"
        scale = 255.0
    stats = np.array([_mean_std(frame) for frame in array], dtype=np.float64) * scale
    is_flat = stats[:, 1] < FLAT_LEVELS
    flat = int(is_flat.sum())
    if flat >= max(1, FLAT_FRACTION * array.shape[0]):
        mean = float(stats[is_flat, 0].mean())
        colour = "black" if mean < 16 else "white" if mean > 239 else "one flat colour"
        return f"{flat} of {array.shape[0]} frames are {colour}"
    return None


def _mean_std(frame: NDArray[Any]) -> tuple[float, float]:
    """Mean and standard deviation of all channel values of ``frame``, on every ``_STRIDE``-th
    row and column (a small contiguous copy: cheap, and no float copy of the whole clip)."""
    sample = np.ascontiguousarray(frame[::_STRIDE, ::_STRIDE])
    if sample.dtype.kind == "f" and sample.dtype != np.float64:
        sample = sample.astype(np.float32)
    mean, std = cv2.meanStdDev(sample.reshape(-1, 1))
    return float(mean[0, 0]), float(std[0, 0])


def screen_takes(takes: list[Take], warnings: list[str]) -> list[Take]:
    """``takes`` without the failed ones; a warning per dropped take is appended to ``warnings``.

    Raises ``GenerationFailed`` (one line, with the first reason) when every take failed.
    """
    kept: list[Take] = []
    reasons: list[str] = []
    for k, take in enumerate(takes, start=1):
        marked = take.info.get("failed")
        reason = str(marked) if marked else clip_fault(take.frames)
        if reason is None:
            kept.append(take)
            continue
        reasons.append(reason)
        warnings.append(f"variation {k} (seed {take.seed}) was dropped: {reason}")
    if takes and not kept:
        raise GenerationFailed(f"every take failed ({reasons[0]}); no clip was delivered")
    return kept
