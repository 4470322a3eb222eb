"""Photos as phones send them, built in memory: HEIC/HEIF (encoded with ``pillow-heif``, a
test-only dependency; the product decodes with the decode-only ``pi-heif``) and AVIF (Pillow).

Nothing binary is committed: every file is made from ``images.portrait_rgb`` or the public-domain
``examples/astronaut.jpg`` at test time. ``pillow_heif`` is used through its own API only, never
registered with Pillow, so every decode in the tests goes through the product's ``pi-heif`` path.
"""

from __future__ import annotations

import io

import images
import numpy as np
import pillow_heif
from PIL import Image


def _exif(orientation: int | None, gps: bool) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    exif[0x010F] = "LeakyCam"
    if gps:
        ifd = exif.get_ifd(0x8825)
        ifd[1] = "N"
        ifd[2] = images.GPS_LATITUDE
        ifd[3] = "E"
        ifd[4] = (2.0, 17.0, 40.2)
    return exif.tobytes()


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description GPSLatitude="48,51.494N"/></x:xmpmeta>'


def heic_bytes(
    im: Image.Image | None = None, *, orientation: int | None = None, gps: bool = True
) -> bytes:
    """An 8-bit HEIC (brand ``heic``) with EXIF (camera make, GPS) and XMP metadata."""
    picture = im if im is not None else images.portrait_rgb()
    buffer = io.BytesIO()
    pillow_heif.from_pillow(picture.convert("RGB")).save(
        buffer, quality=90, exif=_exif(orientation, gps), xmp=XMP
    )
    return buffer.getvalue()


def heic_10bit(width: int = 160, height: int = 200) -> bytes:
    """A 10-bit HEIC holding a horizontal grey ramp (black on the left, white on the right)."""
    ramp = np.linspace(0, 65535, width, dtype=np.float64)
    grey = np.repeat(ramp[None, :], height, axis=0).astype(np.uint16)
    rgb = np.ascontiguousarray(np.stack([grey, grey, grey], axis=2))
    heif = pillow_heif.from_bytes(mode="RGB;16", size=(width, height), data=rgb.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=-1)
    return buffer.getvalue()


BURST_COLOURS = ((220, 30, 30), (30, 200, 30), (30, 30, 220))


def heic_burst(width: int = 160, height: int = 200) -> bytes:
    """A HEIC holding three images (a burst): red first, then green, then blue."""
    frames = [Image.new("RGB", (width, height), c) for c in BURST_COLOURS]
    heif = pillow_heif.from_pillow(frames[0])
    for frame in frames[1:]:
        heif.add_from_pillow(frame)
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)
    return buffer.getvalue()


def avif_bytes(
    im: Image.Image | None = None, *, orientation: int | None = None, gps: bool = True
) -> bytes:
    """An AVIF (brand ``avif``) with EXIF (camera make, GPS) and XMP metadata."""
    picture = im if im is not None else images.portrait_rgb()
    return images.encode(
        picture.convert("RGB"), "AVIF", quality=80, exif=_exif(orientation, gps), xmp=XMP
    )


def avif_sequence(width: int = 160, height: int = 200) -> bytes:
    """An animated AVIF (brand ``avis``): red first, then green, then blue."""
    frames = [Image.new("RGB", (width, height), c) for c in BURST_COLOURS]
    return images.encode(frames[0], "AVIF", save_all=True, append_images=frames[1:], quality=80)


def astronaut_heic() -> bytes:
    """The public-domain example photo (examples/astronaut.jpg) re-encoded as HEIC."""
    return heic_bytes(Image.open(io.BytesIO(images.astronaut_bytes())), gps=True)


def astronaut_avif() -> bytes:
    """The public-domain example photo (examples/astronaut.jpg) re-encoded as AVIF."""
    return avif_bytes(Image.open(io.BytesIO(images.astronaut_bytes())), gps=True)
