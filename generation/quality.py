"""Backend-agnostic quality scores for a take, and ranking of takes.

- ``identity``: 1.0 = face geometry unchanged. Eye centres, nose and mouth corners are tracked from
  frame 0 through the clip (every other frame) with pyramidal Lucas-Kanade optical flow, each as
  the median motion of the corner features around it; eye spacing and eye-nose-mouth proportions
  (rotation- and scale-free ratios) are compared with frame 0. The 80th percentile of the drift
  (robust to a blink, which briefly hides the pupils) maps to 0..1: a 25 % drift scores 0.
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
        # Halve with pyrDown (Gaussian, ~6x cheaper than INTER_AREA) while still twice too big.
        while grey.shape[0] >= 2 * size[1] and grey.shape[1] >= 2 * size[0]:
            grey = cv2.pyrDown(grey)
        if grey.shape[:2] != (size[1], size[0]):
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        out[t] = grey
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
        flow = np.asarray(
            cv2.calcOpticalFlowFarneback(grey[0], grey[t], None, 0.5, 3, 13, 3, 5, 1.1, 0),  # type: ignore[call-overload]
            dtype=np.float32,
        )
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        values.append(float(np.percentile(magnitude, 95)))
    return 100.0 * float(np.mean(values)) / float(width)


def _ratios(points: NDArray[np.float32]) -> NDArray[np.float64]:
    """Scale- and rotation-free proportions of (left eye, right eye, nose, mouth left, mouth right)."""
    left, right, nose, mouth_l, mouth_r = points.astype(np.float64)
    eye_mid = (left + right) / 2
    mouth_mid = (mouth_l + mouth_r) / 2
    eye_span = max(float(np.linalg.norm(right - left)), 1e-6)
    vertical = max(float(np.linalg.norm(mouth_mid - eye_mid)), 1e-6)
    return np.array(
        [
            eye_span / vertical,  # eye spacing vs eye-to-mouth
            float(np.linalg.norm(nose - eye_mid)) / vertical,  # nose position
            float(np.linalg.norm(mouth_r - mouth_l)) / eye_span,  # mouth width vs eyes
        ]
    )


def identity(frames: Frames, face: FaceBox | None) -> float:
    """1.0 when the tracked face proportions match frame 0 throughout; lower as they drift.

    Each landmark (eye centres, nose, mouth corners) is followed through the clip as the median
    motion of the corner features around it (more robust than one point on smooth skin), each
    frame tracked from frame 0 with pyramidal Lucas-Kanade and checked forwards-backwards.
    """
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
    landmarks = geo.points() - np.array([x0, y0], dtype=np.float32)
    grey0 = np.asarray(cv2.cvtColor(frames[0, y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    points, owner = _landmark_features(grey0, landmarks, 0.3 * eye_dist)
    window = max(9, round(eye_dist * 0.3) | 1)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    base = _ratios(landmarks)
    drifts: list[float] = []
    previous: NDArray[np.float32] = points.copy()
    # Every other frame is plenty: real drift is gradual, and it halves the cost.
    for frame in frames[1::2]:
        grey = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        tracked, status, _ = cv2.calcOpticalFlowPyrLK(
            grey0,
            grey,
            points,
            previous.copy(),
            winSize=(window, window),
            maxLevel=2,
            criteria=criteria,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        )
        back, status_b, _ = cv2.calcOpticalFlowPyrLK(
            grey,
            grey0,
            tracked,
            points.copy(),
            winSize=(window, window),
            maxLevel=2,
            criteria=criteria,
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        )
        moved = np.asarray(tracked, dtype=np.float32).reshape(-1, 2)
        returned = np.asarray(back, dtype=np.float32).reshape(-1, 2)
        good = (
            np.asarray(status).reshape(-1).astype(bool)
            & np.asarray(status_b).reshape(-1).astype(bool)
            & (np.linalg.norm(returned - points.reshape(-1, 2), axis=1) < 0.08 * eye_dist)
        )
        now = landmarks.copy()
        lost = False
        for k in range(len(landmarks)):
            mine = good & (owner == k)
            if not mine.any():
                lost = True
                break
            shift = np.median(moved[mine] - points.reshape(-1, 2)[mine], axis=0)
            now[k] = landmarks[k] + shift
        if lost:
            continue  # unreliable frame (e.g. eyes shut): skip it
        previous = np.where(good[:, None, None], tracked, previous).astype(np.float32)
        drifts.append(float(np.max(np.abs(_ratios(now) / base - 1.0))))
    if not drifts:
        return 0.0
    drift = float(np.percentile(np.array(drifts), 80))
    return float(max(0.0, 1.0 - drift / IDENTITY_DRIFT_SCALE))


def _landmark_features(
    grey: NDArray[np.uint8], landmarks: NDArray[np.float32], radius: float
) -> tuple[NDArray[np.float32], NDArray[np.int_]]:
    """Trackable points around each landmark (the landmark itself included) and their owners."""
    points: list[NDArray[np.float32]] = []
    owners: list[NDArray[np.int_]] = []
    for k, (lx, ly) in enumerate(landmarks):
        mask = np.zeros(grey.shape, dtype=np.uint8)
        cv2.circle(mask, (round(float(lx)), round(float(ly))), max(3, round(radius)), 255, -1)
        found = cv2.goodFeaturesToTrack(
            grey, maxCorners=12, qualityLevel=0.01, minDistance=2, mask=mask, blockSize=5
        )
        extra = (
            np.zeros((0, 2), dtype=np.float32)
            if found is None
            else np.asarray(found, dtype=np.float32).reshape(-1, 2)
        )
        mine = np.vstack([np.array([[lx, ly]], dtype=np.float32), extra])
        points.append(mine)
        owners.append(np.full(len(mine), k, dtype=np.int_))
    return np.vstack(points).reshape(-1, 1, 2), np.concatenate(owners)


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
