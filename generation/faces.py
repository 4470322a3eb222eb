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
        """Frontal face boxes (no eyes), largest first.

        Searched on a downscaled grey copy; if nothing is found, again at twice the resolution
        (small faces in big photos) and then on copies rotated by ±15° and ±30° (tilted heads).
        """
        height, width = rgb.shape[:2]
        grey_full = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        attempts = [(DETECT_LONG_SIDE, 0.0)]
        if max(height, width) > 1.5 * DETECT_LONG_SIDE:
            attempts.append((2 * DETECT_LONG_SIDE, 0.0))
        attempts += [(DETECT_LONG_SIDE, angle) for angle in (18.0, -18.0)]
        for long_side, angle in attempts:
            scale = min(1.0, long_side / max(height, width))
            grey = grey_full
            if scale < 1.0:
                size = (round(width * scale), round(height * scale))
                grey = np.asarray(
                    cv2.resize(grey_full, size, interpolation=cv2.INTER_AREA), dtype=np.uint8
                )
            inv = 1.0 / scale
            faces = [
                FaceBox(x=round(x * inv), y=round(y * inv), w=round(w * inv), h=round(h * inv))
                for x, y, w, h in sorted(self._faces_in(grey, angle), key=lambda b: -b[2] * b[3])
            ]
            if angle:
                # Turned searches find more false faces: keep those whose two eyes are found.
                faces = [f for f in faces if None not in self._eyes_at(grey_full, f, angle)]
            if faces:
                return faces
        return []

    def _faces_in(self, grey: NDArray[np.uint8], angle: float) -> list[tuple[float, ...]]:
        """Face boxes in ``grey`` (rotated by ``angle`` degrees first; boxes mapped back)."""
        height, width = grey.shape[:2]
        rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
        work = np.asarray(
            cv2.warpAffine(grey, rotation, (width, height), borderMode=cv2.BORDER_REPLICATE)
            if angle
            else grey,
            dtype=np.uint8,
        )
        work = np.asarray(cv2.equalizeHist(work), dtype=np.uint8)
        min_side = max(20, int(0.06 * min(height, width)))
        boxes: list[tuple[float, ...]] = []
        cascades = ((self._face, 6), (self._face_alt, 4)) if not angle else ((self._face, 8),)
        for cascade, neighbours in cascades:
            hits = cascade.detectMultiScale(
                work, scaleFactor=1.12, minNeighbors=neighbours, minSize=(min_side, min_side)
            )
            boxes = [tuple(float(v) for v in b) for b in np.asarray(hits).reshape(-1, 4)]
            if boxes:
                break
        if not angle:
            return boxes
        back = cv2.invertAffineTransform(rotation)
        mapped: list[tuple[float, ...]] = []
        for x, y, w, h in boxes:
            cx, cy = back @ np.array([x + w / 2, y + h / 2, 1.0])
            mapped.append((cx - w / 2, cy - h / 2, w, h))
        return mapped

    def locate_eyes(self, rgb: NDArray[np.uint8], face: FaceBox) -> FaceBox:
        """``face`` with eye centres: cascade hits where plausible, else estimates; refined to the iris.

        The eye cascades are tried on the face upright and turned by ±12° and ±24°, so the eyes
        of a tilted head are found (and come back as a tilted eye line).
        """
        grey = np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        left: tuple[float, float] | None = None
        right: tuple[float, float] | None = None
        for angle in (0.0, 12.0, -12.0, 24.0, -24.0):
            pair = self._eyes_at(grey, face, angle)
            if pair[0] is not None and pair[1] is not None:
                left, right = pair
                break
            if angle == 0.0:
                left, right = pair  # one eye upright beats none; keep looking for both
        left_est = (face.x + EYE_X_LEFT * face.w, face.y + EYE_Y * face.h)
        right_est = (face.x + EYE_X_RIGHT * face.w, face.y + EYE_Y * face.h)
        if left is None and right is not None:
            left = (2 * (face.x + face.w / 2) - right[0], right[1])
        if right is None and left is not None:
            right = (2 * (face.x + face.w / 2) - left[0], left[1])
        left = _refine_to_iris(rgb, left or left_est, face.w)
        right = _refine_to_iris(rgb, right or right_est, face.w)
        return FaceBox(x=face.x, y=face.y, w=face.w, h=face.h, left_eye=left, right_eye=right)

    def _eyes_at(
        self, grey: NDArray[np.uint8], face: FaceBox, angle: float
    ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """Eye centres found with the face turned upright by ``angle`` degrees (picture coords)."""
        side = int(1.5 * max(face.w, face.h))
        cx, cy = face.x + face.w / 2, face.y + face.h / 2
        rotation = np.asarray(cv2.getRotationMatrix2D((cx, cy), angle, 1.0), dtype=np.float64)
        rotation[:, 2] -= (cx - side / 2, cy - side / 2)  # crop around the face
        crop = cv2.warpAffine(grey, rotation, (side, side), borderMode=cv2.BORDER_REPLICATE)
        local = FaceBox(
            x=round(side / 2 - face.w / 2), y=round(side / 2 - face.h / 2), w=face.w, h=face.h
        )
        top, bottom = max(0, local.y), min(side, local.y + int(0.62 * face.h))
        upper = cv2.equalizeHist(np.ascontiguousarray(crop[top:bottom, local.x : local.x + face.w]))
        if upper.size == 0:
            return None, None
        min_eye = max(6, face.w // 9)
        max_eye = max(min_eye + 1, face.w // 3)
        left: tuple[float, float] | None = None
        right: tuple[float, float] | None = None
        for cascade in (self._eye, self._eye_glasses):
            eyes = cascade.detectMultiScale(
                upper,
                scaleFactor=1.08,
                minNeighbors=3,
                minSize=(min_eye, min_eye),
                maxSize=(max_eye, max_eye),
            )
            left, right = _pick_pair(eyes, local, local.x, top)
            if left is not None or right is not None:
                break
        back = cv2.invertAffineTransform(rotation)

        def to_picture(p: tuple[float, float] | None) -> tuple[float, float] | None:
            if p is None:
                return None
            x, y = back @ np.array([p[0], p[1], 1.0])
            return (float(x), float(y))

        return to_picture(left), to_picture(right)


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
