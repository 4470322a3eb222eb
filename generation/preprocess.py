"""Subject-aware framing: crop to the main face (head and shoulders) and resize to the target size.

``--crop auto`` frames the main face with room for hair above and shoulders below, in a
portrait-ish 4:5 box (never upscaling the crop more than ``MAX_UPSCALE``); ``--crop none`` keeps the
whole frame. Both then resize so the long side is ``size`` and both sides are even (H.264 yuv420p).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox
from livingphoto.resample import shrink

CropMode = Literal["auto", "none"]

# Crop box in face widths: width, and how far above the face top it starts.
CROP_WIDTH_FACES = 3.4
CROP_ASPECT = 1.25  # height / width (4:5 portrait)
CROP_ABOVE_FACES = 0.9
MAX_UPSCALE = 1.5


@dataclass(frozen=True)
class Framed:
    """The picture the backend animates, and where it came from."""

    image: NDArray[np.uint8]  # (H, W, 3) RGB, even sides, long side == size
    face: FaceBox | None  # in ``image`` coordinates (eyes not yet located)
    crop: tuple[int, int, int, int]  # (x0, y0, x1, y1) in source pixels
    scale: float  # output pixels per source pixel


def even_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) scaled so the long side is ``long_side``, both even and at least 2."""
    scale = long_side / max(width, height)
    w = max(2, round(width * scale / 2) * 2)
    h = max(2, round(height * scale / 2) * 2)
    return w, h


def crop_box(width: int, height: int, face: FaceBox, size: int) -> tuple[int, int, int, int]:
    """Head-and-shoulders box around ``face`` within a ``width`` x ``height`` image."""
    box_w = CROP_WIDTH_FACES * face.w
    box_h = box_w * CROP_ASPECT
    above = CROP_ABOVE_FACES * face.w
    # Do not blow tiny crops up too far: grow the box (same aspect) to at least size / MAX_UPSCALE.
    min_long = size / MAX_UPSCALE
    if box_h < min_long:
        grow = min_long / box_h
        box_w, box_h, above = box_w * grow, box_h * grow, above * grow
    box_w = min(box_w, float(width))
    box_h = min(box_h, float(height))
    centre_x = face.x + face.w / 2
    x0 = round(min(max(0.0, centre_x - box_w / 2), width - box_w))
    y0 = round(min(max(0.0, face.y - above), height - box_h))
    return x0, y0, x0 + round(box_w), y0 + round(box_h)


def frame_subject(
    rgb: NDArray[np.uint8],
    face: FaceBox | None,
    *,
    crop: CropMode,
    size: int,
    reduction: int = 1,
    finer: Callable[[float], tuple[NDArray[np.uint8], int]] | None = None,
) -> Framed:
    """Crop (``auto``: around ``face`` if any) and resize ``rgb`` to long side ``size``.

    ``rgb`` may be the photo at 1/``reduction`` of its size (``SanitizedImage.reduction``);
    ``face`` and the returned ``crop`` and ``scale`` are in source pixels all the same, so the
    framing does not depend on how the photo was decoded. When the crop holds fewer than
    ``size`` pixels of ``rgb`` along its long side, ``finer(wanted)`` (``SanitizedImage.finer``:
    the photo with ``wanted`` times the pixels per side, and its reduction) gives it more.
    """
    height, width = rgb.shape[:2]
    source_w, source_h = width * reduction, height * reduction
    if crop == "auto" and face is not None:
        x0, y0, x1, y1 = crop_box(source_w, source_h, face, size)
    else:
        x0, y0, x1, y1 = 0, 0, source_w, source_h
    pixels, at = rgb, reduction
    if reduction > 1 and finer is not None and max(x1 - x0, y1 - y0) / reduction < size:
        pixels, at = finer(size * reduction / max(x1 - x0, y1 - y0))
    region = pixels[y0 // at : -(-y1 // at), x0 // at : -(-x1 // at)]
    out_w, out_h = even_size(x1 - x0, y1 - y0, size)
    scale_x = out_w / (x1 - x0)
    scale_y = out_h / (y1 - y0)
    if out_w <= region.shape[1] and out_h <= region.shape[0]:
        resized = shrink(region, (out_w, out_h))
    else:
        resized = np.asarray(
            cv2.resize(
                region,
                (out_w, out_h),
                interpolation=cv2.INTER_AREA if out_w < region.shape[1] else cv2.INTER_CUBIC,
            ),
            dtype=np.uint8,
        )
    moved: FaceBox | None = None
    if face is not None:
        moved = FaceBox(
            x=round((face.x - x0) * scale_x),
            y=round((face.y - y0) * scale_y),
            w=round(face.w * scale_x),
            h=round(face.h * scale_y),
        )
        if moved.x + moved.w <= 0 or moved.y + moved.h <= 0 or moved.x >= out_w or moved.y >= out_h:
            moved = None
    return Framed(
        image=np.ascontiguousarray(resized, dtype=np.uint8),
        face=moved,
        crop=(x0, y0, x1, y1),
        scale=(scale_x + scale_y) / 2,
    )
