"""Backend-agnostic quality scores for a take, and ranking of takes.

- ``identity``: 1.0 = face geometry unchanged. Eye centres, nose and mouth corners are tracked from
  frame 0 through the clip with pyramidal Lucas-Kanade optical flow; eye spacing and eye-nose-mouth
  proportions (rotation- and scale-free ratios) are compared with frame 0 in every frame. The 90th
  percentile of the drift (robust to a blink, which briefly hides the pupils) maps to 0..1.
- ``loop_seam``: ``max(0, d(last, first) / median consecutive step - 1)``: 0 = the jump at the loop
  point is no larger than an ordinary frame step.
- ``flicker``: mean absolute temporal second difference of a blurred, small luma copy, in 8-bit
  levels: smooth motion is near 0, frame-to-frame brightness or noise changes are large.
- ``motion``: 95th percentile of optical-flow magnitude from frame 0, in percent of the frame width,
  averaged over sampled frames (0 = still).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.animator import Scores
from generation.backend import FaceBox, Frames
from generation.faces import geometry

IDENTITY_THRESHOLD = 0.8  # takes below this are flagged
# Identity falls to 0 when the face proportions drift by this fraction.
IDENTITY_DRIFT_SCALE = 0.25
SMALL_SIDE = 128  # luma copies for seam, flicker and motion


def _small_luma(frames: Frames, side: int = SMALL_SIDE) -> NDArray[np.float32]:
    _, height, width, _ = frames.shape
    scale = side / max(height, width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    out = np.empty((frames.shape[0], size[1], size[0]), dtype=np.float32)
    for t, frame in enumerate(frames):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        out[t] = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return out


def loop_seam(frames: Frames) -> float:
    """How much larger the jump from the last frame to the first is than a typical step."""
    return _loop_seam(_small_luma(frames)) if len(frames) >= 3 else 0.0


def _loop_seam(luma: NDArray[np.float32]) -> float:
    steps = np.abs(np.diff(luma, axis=0)).mean(axis=(1, 2))
    typical = float(np.median(steps))
    seam = float(np.abs(luma[-1] - luma[0]).mean())
    # A still clip has no typical step: any visible seam at all then counts as a full jump.
    floor = 0.05
    return max(0.0, seam / max(typical, floor) - 1.0)


def flicker(frames: Frames) -> float:
    """Mean absolute temporal second difference of blurred luma (8-bit levels)."""
    return _flicker(_small_luma(frames)) if len(frames) >= 3 else 0.0


def _flicker(luma: NDArray[np.float32]) -> float:
    height, width = luma.shape[1:]
    size = (max(8, width // 2), max(8, height // 2))
    small = np.stack(
        [
            cv2.GaussianBlur(cv2.resize(f, size, interpolation=cv2.INTER_AREA), (0, 0), 1.5)
            for f in luma
        ]
    )
    second = small[2:] - 2 * small[1:-1] + small[:-2]
    return float(np.abs(second).mean())


def motion_amount(frames: Frames, samples: int = 6) -> float:
    """How much the clip moves: mean of the 95th-percentile flow magnitude (percent of width)."""
    return _motion(_small_luma(frames), samples) if len(frames) >= 2 else 0.0


def _motion(luma: NDArray[np.float32], samples: int = 6) -> float:
    grey = np.clip(luma + 0.5, 0, 255).astype(np.uint8)
    count, _, width = grey.shape
    picks = np.unique(np.linspace(1, count - 1, num=min(samples, count - 1)).astype(int))
    values = []
    for t in picks:
        flow = cv2.calcOpticalFlowFarneback(grey[0], grey[t], None, 0.5, 3, 13, 3, 5, 1.1, 0)
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        values.append(float(np.percentile(magnitude, 95)))
    return 100.0 * float(np.mean(values)) / width


def _ratios(points: NDArray[np.float32]) -> NDArray[np.float64]:
    """Scale- and rotation-free proportions of (left eye, right eye, nose, mouth left, mouth right)."""
    left, right, nose, mouth_l, mouth_r = points.astype(np.float64)
    eye_mid = (left + right) / 2
    mouth_mid = (mouth_l + mouth_r) / 2
    eye_span = np.linalg.norm(right - left)
    vertical = np.linalg.norm(mouth_mid - eye_mid)
    return np.array(
        [
            eye_span / max(vertical, 1e-6),  # eye spacing vs eye-to-mouth
            np.linalg.norm(nose - eye_mid) / max(vertical, 1e-6),  # nose position
            np.linalg.norm(mouth_r - mouth_l) / max(eye_span, 1e-6),  # mouth width vs eyes
        ]
    )


def identity(frames: Frames, face: FaceBox | None) -> float:
    """1.0 when the tracked face proportions match frame 0 throughout; lower as they drift."""
    if face is None or len(frames) < 2:
        return 1.0
    geo = geometry(face)
    eye_dist = geo.eye_distance
    # Work on the face region only (with room for the head to move).
    height, width = frames.shape[1:3]
    margin = 0.6 * face.w
    x0, y0 = max(0, int(face.x - margin)), max(0, int(face.y - margin))
    x1 = min(width, int(face.x + face.w + margin))
    y1 = min(height, int(face.y + face.h + margin))
    points0 = (geo.points() - np.array([x0, y0], dtype=np.float32)).reshape(-1, 1, 2)
    window = max(9, int(round(eye_dist * 0.35)) | 1)
    grey0 = cv2.cvtColor(frames[0, y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    base = _ratios(points0.reshape(-1, 2))
    drifts: list[float] = []
    params = {
        "winSize": (window, window),
        "maxLevel": 2,
        "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    }
    previous = points0.copy()
    for frame in frames[1:]:
        grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        # Track from frame 0 directly (no accumulated drift), seeded with the last position.
        tracked, status, _ = cv2.calcOpticalFlowPyrLK(
            grey0, grey, points0, previous.copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **params
        )
        if tracked is None or status is None or not status.all():
            drifts.append(1.0)
            continue
        back, status_b, _ = cv2.calcOpticalFlowPyrLK(grey, grey0, tracked, None, **params)
        if back is not None and status_b is not None:
            fb_error = np.linalg.norm((back - points0).reshape(-1, 2), axis=1)
            if float(fb_error.max()) > 0.25 * eye_dist:
                drifts.append(float(np.nan))  # unreliable frame (e.g. eyes shut): skip it
                continue
        previous = tracked
        ratio = _ratios(tracked.reshape(-1, 2))
        drifts.append(float(np.max(np.abs(ratio / base - 1.0))))
    valid = np.array([d for d in drifts if not np.isnan(d)])
    if valid.size == 0:
        return 0.0
    drift = float(np.percentile(valid, 90))
    return float(max(0.0, 1.0 - drift / IDENTITY_DRIFT_SCALE))


def score(frames: Frames, face: FaceBox | None) -> Scores:
    """All four scores of one take (the small luma copy is computed once and shared)."""
    luma = _small_luma(frames)
    few = len(frames) < 3
    return Scores(
        identity=identity(frames, face),
        loop_seam=0.0 if few else _loop_seam(luma),
        flicker=0.0 if few else _flicker(luma),
        motion=0.0 if len(frames) < 2 else _motion(luma),
    )


def combined(scores: Scores) -> float:
    """One number to rank takes by: identity first, then a clean loop, steadiness, real motion.

    A still take (motion < 0.2 % of the width) is penalised; beyond that more motion earns
    nothing, so the natural take beats the dramatic one.
    """
    still_penalty = 0.3 * max(0.0, 1.0 - scores.motion / 0.2)
    return (
        scores.identity
        - 0.3 * min(scores.loop_seam, 2.0)
        - 0.05 * min(scores.flicker, 6.0)
        - still_penalty
    )


@dataclass(frozen=True)
class Ranked:
    index: int  # position in the input sequence (0-based)
    rank: int  # 1 = best
    combined: float
    flagged: bool


def rank(all_scores: Sequence[Scores], threshold: float = IDENTITY_THRESHOLD) -> list[Ranked]:
    """Rank takes by ``combined`` (ties keep generation order); flag identity below ``threshold``."""
    values = [combined(s) for s in all_scores]
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    ranks = {index: position + 1 for position, index in enumerate(order)}
    return [
        Ranked(
            index=i,
            rank=ranks[i],
            combined=values[i],
            flagged=all_scores[i].identity < threshold,
        )
        for i in range(len(values))
    ]
