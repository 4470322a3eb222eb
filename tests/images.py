"""A factory of good, odd and bad photos built in memory, for intake, CLI and service tests.

``bad_images()`` and ``odd_images()`` return name -> bytes; each helper is also usable alone.
Nothing here touches the network or large memory: the decompression bomb is streamed.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def portrait_rgb(width: int = 320, height: int = 400, seed: int = 0) -> Image.Image:
    """A synthetic, smooth RGB picture (not a face) of the given size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 80 * np.sin(xx / 37.0 + rng.uniform(0, 6)),
            128 + 80 * np.cos(yy / 29.0 + rng.uniform(0, 6)),
            128 + 60 * np.sin((xx + yy) / 53.0),
        ],
        axis=2,
    )
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def jpeg_bytes(width: int = 320, height: int = 400) -> bytes:
    return encode(portrait_rgb(width, height), "JPEG", quality=90)


def astronaut_bytes() -> bytes:
    return (EXAMPLES / "astronaut.jpg").read_bytes()


def text_as_jpg() -> bytes:
    return b"This is not a photo, just some text that was renamed to photo.jpg\n" * 4


def truncated_jpeg() -> bytes:
    data = jpeg_bytes()
    return data[: len(data) // 2]


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A 1-bit PNG of ``width`` x ``height`` pixels that is only tens of KB on disk."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def one_by_one_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), (200, 100, 50)), "PNG")


def strip_png(width: int = 30_000, height: int = 200) -> bytes:
    return encode(Image.new("L", (width, height), 128), "PNG")


def cmyk_jpeg() -> bytes:
    return encode(portrait_rgb().convert("CMYK"), "JPEG", quality=90)


def png16() -> bytes:
    ramp = (np.linspace(0, 65535, 320, dtype=np.float64)[None, :] * np.ones((400, 1))).astype(
        np.uint16
    )
    return encode(Image.fromarray(ramp), "PNG")


def palette_png_with_transparency() -> bytes:
    im = portrait_rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    return encode(im, "PNG", transparency=0)


def la_png() -> bytes:
    grey = portrait_rgb().convert("L")
    alpha = Image.new("L", grey.size, 128)
    return encode(Image.merge("LA", (grey, alpha)), "PNG")


def animated_gif() -> bytes:
    frames = [portrait_rgb(seed=k).convert("P", palette=Image.Palette.ADAPTIVE) for k in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp_bytes() -> bytes:
    return encode(portrait_rgb(), "WEBP", quality=80)


def bmp_bytes() -> bytes:
    return encode(portrait_rgb(), "BMP")


# A GPS position that must never reach an output file.
GPS_LATITUDE = (48.0, 51.0, 29.64)


def jpeg_with_exif_orientation_and_gps(width: int = 400, height: int = 300) -> bytes:
    """A landscape-stored JPEG whose EXIF says "rotate 90° CW" (orientation 6), with GPS."""
    im = portrait_rgb(width, height)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    exif[0x010F] = "LeakyCam"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = GPS_LATITUDE
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.2)
    return encode(im, "JPEG", quality=90, exif=exif.tobytes())


def bad_images() -> dict[str, bytes]:
    """Inputs that must be refused with exit code 2 / HTTP 400."""
    return {
        "zero-bytes": b"",
        "text-renamed-jpg": text_as_jpg(),
        "truncated-jpeg": truncated_jpeg(),
        "decompression-bomb-png": bomb_png(),
        "one-by-one": one_by_one_png(),
        "strip-30000x200": strip_png(),
        "bmp": bmp_bytes(),
    }


def odd_images() -> dict[str, bytes]:
    """Unusual but valid inputs that must be accepted."""
    return {
        "cmyk-jpeg": cmyk_jpeg(),
        "png-16bit": png16(),
        "palette-png-transparency": palette_png_with_transparency(),
        "la-png": la_png(),
        "animated-gif": animated_gif(),
        "webp": webp_bytes(),
        "exif-orientation-gps-jpeg": jpeg_with_exif_orientation_and_gps(),
    }
