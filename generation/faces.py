"""Offline face and eye location with the Haar cascades that ship inside opencv-python-headless 4.x.

``FaceDetector`` loads its cascades once (construct it in a backend's or animator's ``setup()``) and
finds the main face (the largest frontal one) and its eye centres. The eye cascade misses often
(glasses, small faces, closed eyes); then the centres are estimated from the face box with the
average human proportions, and refined to the darkest blob (iris) near each estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox
from livingphoto.errors import GenerationFailed

# Eye centres as fractions of the face box (Haar frontal boxes, measured on typical portraits).
EYE_Y = 0.39
EYE_X_LEFT = 0.30
EYE_X_RIGHT = 0.70
# Work on a copy whose long side is at most this many pixels: enough for faces >= ~40 px.
DETECT_LONG_SIDE = 480


@dataclass(frozen=True)
class FaceGeometry:
    """Derived facial landmarks (pixel coordinates) used by the warp backend and identity scoring."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    nose: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]

    @property
    def eye_distance(self) -> float:
        return float(
            np.hypot(self.right_eye[0] - self.left_eye[0], self.right_eye[1] - self.left_eye[1])
        )

    def points(self) -> NDArray[np.float32]:
        return np.array(
            [self.left_eye, self.right_eye, self.nose, self.mouth_left, self.mouth_right],
            dtype=np.float32,
        )


def geometry(face: FaceBox) -> FaceGeometry:
    """Eye, nose and mouth-corner positions for ``face`` (eyes as detected, the rest estimated)."""
    left = face.left_eye or (face.x + EYE_X_LEFT * face.w, face.y + EYE_Y * face.h)
    right = face.right_eye or (face.x + EYE_X_RIGHT * face.w, face.y + EYE_Y * face.h)
    mid_x = (left[0] + right[0]) / 2.0
    mid_y = (left[1] + right[1]) / 2.0
    eye_dist = max(1.0, float(np.hypot(right[0] - left[0], right[1] - left[1])))
    # Unit vectors along the eye line and down the face (handles a tilted head).
    ux, uy = (right[0] - left[0]) / eye_dist, (right[1] - left[1]) / eye_dist
    dx, dy = -uy, ux
    nose = (mid_x + dx * 0.55 * eye_dist, mid_y + dy * 0.55 * eye_dist)
    mouth_c = (mid_x + dx * 1.05 * eye_dist, mid_y + dy * 1.05 * eye_dist)
    half_mouth = 0.42 * eye_dist
    mouth_left = (mouth_c[0] - ux * half_mouth, mouth_c[1] - uy * half_mouth)
    mouth_right = (mouth_c[0] + ux * half_mouth, mouth_c[1] + uy * half_mouth)
    return FaceGeometry(left, right, nose, mouth_left, mouth_right)


class FaceDetector:
    """Frontal face + eye cascades, loaded once per instance."""

    def __init__(self, cascade_dir: Path | None = None) -> None:
        base = Path(cascade_dir) if cascade_dir is not None else Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        self._face = self._load(base / "haarcascade_frontalface_default.xml")
        self._face_alt = self._load(base / "haarcascade_frontalface_alt2.xml")
        self._eye = self._load(base / "haarcascade_eye.xml")
        self._eye_glasses = self._load(base / "haarcascade_eye_tree_eyeglasses.xml")

    @staticmethod
    def _load(path: Path) -> cv2.CascadeClassifier:
        classifier = cv2.CascadeClassifier(str(path))
        if classifier.empty():
            raise GenerationFailed(f"cannot load the face detector model {path.name}")
        return classifier

    def detect(self, rgb: NDArray[np.uint8]) -> FaceBox | None:
        """The main (largest) frontal face in ``rgb`` with eye centres, or None."""
        box = self.find_face(rgb)
        if box is None:
            return None
        return self.locate_eyes(rgb, box)

    def find_face(self, rgb: NDArray[np.uint8]) -> FaceBox | None:
        """The largest frontal face box (no eyes), or None."""
        faces = self.find_faces(rgb)
        return faces[0] if faces else None

    def find_faces(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """Frontal face boxes (no eyes), largest first, searched on a downscaled grey copy."""
        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_LONG_SIDE / max(height, width))
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(
                grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
        grey = cv2.equalizeHist(grey)
        min_side = max(24, int(0.08 * min(grey.shape[:2])))
        found: list[tuple[int, int, int, int]] = []
        for cascade, neighbours in ((self._face, 6), (self._face_alt, 4)):
            boxes = cascade.detectMultiScale(
                grey, scaleFactor=1.12, minNeighbors=neighbours, minSize=(min_side, min_side)
            )
            found = [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]
            if found:
                break
        inv = 1.0 / scale
        return [
            FaceBox(x=round(x * inv), y=round(y * inv), w=round(w * inv), h=round(h * inv))
            for x, y, w, h in sorted(found, key=lambda b: -b[2] * b[3])
        ]

    def locate_eyes(self, rgb: NDArray[np.uint8], face: FaceBox) -> FaceBox:
        """``face`` with eye centres: cascade hits where plausible, else estimates; refined to the iris."""
        height, width = rgb.shape[:2]
        x0, y0 = max(0, face.x), max(0, face.y)
        x1, y1 = min(width, face.x + face.w), min(height, face.y + int(face.h * 0.62))
        grey = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY) if x1 > x0 and y1 > y0 else None
        left: tuple[float, float] | None = None
        right: tuple[float, float] | None = None
        if grey is not None and grey.size:
            grey = cv2.equalizeHist(grey)
            min_eye = max(6, face.w // 9)
            max_eye = max(min_eye + 1, face.w // 3)
            for cascade in (self._eye, self._eye_glasses):
                eyes = cascade.detectMultiScale(
                    grey,
                    scaleFactor=1.08,
                    minNeighbors=3,
                    minSize=(min_eye, min_eye),
                    maxSize=(max_eye, max_eye),
                )
                left, right = _pick_pair(eyes, face, x0, y0)
                if left is not None or right is not None:
                    break
        left_est = (face.x + EYE_X_LEFT * face.w, face.y + EYE_Y * face.h)
        right_est = (face.x + EYE_X_RIGHT * face.w, face.y + EYE_Y * face.h)
        if left is None and right is not None:
            left = (2 * (face.x + face.w / 2) - right[0], right[1])
        if right is None and left is not None:
            right = (2 * (face.x + face.w / 2) - left[0], left[1])
        left = _refine_to_iris(rgb, left or left_est, face.w)
        right = _refine_to_iris(rgb, right or right_est, face.w)
        return FaceBox(x=face.x, y=face.y, w=face.w, h=face.h, left_eye=left, right_eye=right)


def _pick_pair(
    eyes: object, face: FaceBox, ox: int, oy: int
) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Plausible left/right eye centres among cascade hits (upper face, one per side)."""
    centre_x = face.x + face.w / 2
    left: tuple[float, float, float] | None = None
    right: tuple[float, float, float] | None = None
    for ex, ey, ew, eh in np.asarray(eyes, dtype=np.float64).reshape(-1, 4):
        cx, cy = ox + ex + ew / 2, oy + ey + eh / 2
        rel_y = (cy - face.y) / face.h
        if not 0.2 <= rel_y <= 0.55:
            continue
        # Prefer hits nearest the expected height.
        cost = abs(rel_y - EYE_Y)
        if cx < centre_x - 0.05 * face.w:
            if left is None or cost < left[2]:
                left = (cx, cy, cost)
        elif cx > centre_x + 0.05 * face.w and (right is None or cost < right[2]):
            right = (cx, cy, cost)
    return (
        (left[0], left[1]) if left else None,
        (right[0], right[1]) if right else None,
    )


def _refine_to_iris(
    rgb: NDArray[np.uint8], guess: tuple[float, float], face_w: int
) -> tuple[float, float]:
    """Move ``guess`` to the centroid of the darkest pixels nearby (the iris/pupil), within bounds."""
    height, width = rgb.shape[:2]
    rx, ry = max(2, int(0.09 * face_w)), max(2, int(0.06 * face_w))
    gx, gy = round(guess[0]), round(guess[1])
    x0, x1 = max(0, gx - rx), min(width, gx + rx + 1)
    y0, y1 = max(0, gy - ry), min(height, gy + ry + 1)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return guess
    grey = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    patch = np.asarray(cv2.GaussianBlur(grey, (0, 0), max(0.8, face_w / 120)), dtype=np.float32)
    threshold = np.percentile(patch, 12)
    ys, xs = np.nonzero(patch <= threshold)
    if xs.size == 0 or float(patch.max() - patch.min()) < 12.0:
        return guess
    weights = (threshold - patch[ys, xs]) + 1.0
    cx = x0 + float(np.average(xs, weights=weights))
    cy = y0 + float(np.average(ys, weights=weights))
    return (cx, cy)
