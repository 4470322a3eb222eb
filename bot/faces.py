"""The contact strip of a group photo: its faces cropped, side by side, numbered 1..N.

The flow shows it with one button per face ("1 · Left", "2 · Right") so that the user sees whom
each button means. It is made in memory from the photo the bot just downloaded, sent back to the
same chat, and not kept.

Usage::

    png = contact_strip(photo_bytes, [(x, y, w, h), ...])   # None when it cannot be made
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

TILE = 160  # px, each face crop (square)
LABEL = 40  # px below each tile for its number
GAP = 8  # px between tiles and around the strip
MARGIN = 0.25  # of the face box, added on every side of a crop
MAX_PIXELS = 60_000_000  # larger photos are not decoded for a strip
BACKGROUND = (24, 24, 28)
FOREGROUND = (245, 245, 245)

Box = tuple[int, int, int, int]


def contact_strip(photo: bytes, faces: Sequence[Box]) -> bytes | None:
    """A PNG of the ``faces`` (x, y, w, h in the photo's pixels, after EXIF rotation) cropped
    with a margin, ``TILE`` px each, numbered from 1 left to right; None when the photo cannot
    be decoded, is larger than ``MAX_PIXELS`` or no box lies inside it."""
    try:
        with Image.open(io.BytesIO(photo)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                return None
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        log.info("no contact strip: the photo cannot be decoded")
        return None
    tiles = [tile for box in faces if (tile := _crop(image, box)) is not None]
    if not tiles or len(tiles) != len(faces):
        return None
    width = GAP + len(tiles) * (TILE + GAP)
    strip = Image.new("RGB", (width, GAP + TILE + LABEL), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=28)
    for number, tile in enumerate(tiles, start=1):
        left = GAP + (number - 1) * (TILE + GAP)
        strip.paste(tile, (left, GAP))
        draw.text(
            (left + TILE // 2, GAP + TILE + LABEL // 2),
            str(number),
            fill=FOREGROUND,
            font=font,
            anchor="mm",
        )
    out = io.BytesIO()
    strip.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _crop(image: Image.Image, box: Box) -> Image.Image | None:
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return None
    side = max(w, h) * (1 + 2 * MARGIN)
    cx, cy = x + w / 2, y + h / 2
    left, top = int(cx - side / 2), int(cy - side / 2)
    right, bottom = int(cx + side / 2), int(cy + side / 2)
    left, top = max(0, left), max(0, top)
    right, bottom = min(image.width, right), min(image.height, bottom)
    if right - left < 2 or bottom - top < 2:
        return None
    crop = image.crop((left, top, right, bottom))
    return ImageOps.pad(crop, (TILE, TILE), color=BACKGROUND)
