"""Image intake: untrusted photo bytes -> a sanitised RGB pixel array, or a one-line ``UsageError``.

Everything a user uploads passes through here first (CLI, service, bots). The rules:

- the real format is sniffed from magic bytes (the file name and the declared type are ignored,
  so a HEIC named ``.jpg`` is read as HEIC); JPEG, PNG, WebP, GIF, HEIC/HEIF (``pi-heif``, the
  decode-only libheif build) and AVIF (Pillow >= 11.2) are accepted, anything else is refused by
  name with the list of what is accepted;
- HEIC/HEIF and AVIF are told apart by the ISO-BMFF ``ftyp`` brands (major and compatible);
  10/12-bit HEIF is decoded to 8 bits; a sequence or burst contributes its first (primary) image;
- size limits are checked before any decoding: bytes on disk, then the pixel count from the header
  (our limit is far below Pillow's), and Pillow's decompression-bomb warning is an error;
- truncated or corrupt files are refused; animated images and bursts contribute their first frame;
- CMYK, palette, 16-bit, grey and alpha images become RGB (alpha composited on white);
- the orientation is applied (EXIF, and HEIF's own ``irot``/``imir`` transforms, which libheif
  applies while decoding), then only the pixels are kept: no EXIF, GPS, XMP, ICC or comments
  survive (``SanitizedImage.rgb`` is a bare array; ``to_png`` re-encodes from it);
- images that are too small or too elongated to animate are refused;
- a caller that works on fewer pixels (``working_side``) gets a big JPEG decoded at a half,
  quarter or eighth of its size by libjpeg's DCT scaling (much less work than decoding every
  pixel and shrinking), and can decode it again finer where it needs detail
  (``SanitizedImage.finer``); the pixel limit then applies to the pixels decoded.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from livingphoto.errors import UsageError
from livingphoto.stderr_capture import captured_stderr

if TYPE_CHECKING:  # numpy is imported where pixels are made: the HEIC child never needs it
    import numpy as np
    from numpy.typing import NDArray

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
# JPEG DCT scaling decodes at 1/2, 1/4 or 1/8 of the stored size.
JPEG_REDUCTIONS = (2, 4, 8)
MIN_SHORT_SIDE = 64
MAX_ASPECT = 4.0

# Sniffed names we decode -> the Pillow format that decodes them.
_DECODERS = {
    "JPEG": "JPEG",
    "PNG": "PNG",
    "WEBP": "WEBP",
    "GIF": "GIF",
    "HEIC": "HEIF",
    "AVIF": "AVIF",
}
SUPPORTED = "JPEG, PNG, WebP, GIF, HEIC/HEIF or AVIF"

# How a refused kind is named, article included ("an AVIF", "a HEIC", "an MP4").
_REFUSED_AS = {
    "BMP": "a BMP image",
    "TIFF": "a TIFF image",
    "PDF": "a PDF document",
    "ZIP archive": "a ZIP archive",
    "ICO": "an ICO icon",
    "PSD": "a Photoshop (PSD) file",
    "MP4/MOV video": "an MP4/MOV video",
    "RIFF (audio/video)": "a RIFF audio or video file",
    "SVG/XML": "an SVG/XML file",
    "text": "not an image (it contains text)",
    "unknown": "not an image format we recognise",
}

# ISO-BMFF brands (ftyp box): HEVC-coded HEIF ("HEIC") and AV1-coded HEIF ("AVIF").
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_GENERIC = frozenset({b"mif1", b"msf1", b"mif2", b"miaf"})
# Decoded in a child process (see load_image).
_ISOLATED = frozenset({"HEIC"})


@dataclass(frozen=True)
class SanitizedImage:
    """Pixels only: an RGB ``uint8`` array of shape (H, W, 3) and a few facts about the source."""

    rgb: NDArray[np.uint8]
    format: str  # "JPEG" | "PNG" | "WEBP" | "GIF" | "HEIC" | "AVIF" (sniffed, not the file name)
    original_size: tuple[int, int]  # (width, height) as stored, before orientation
    warnings: tuple[str, ...] = ()
    # ``rgb`` is the photo at 1/reduction of its size (a big JPEG, decoded for a caller that
    # gave a ``working_side``): source pixel (x, y) is near ``rgb`` pixel (x, y) / reduction.
    reduction: int = 1
    # The file, kept only when ``reduction`` > 1, for ``finer``.
    data: bytes | None = field(default=None, repr=False, compare=False)
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def finer(self, wanted: float) -> tuple[NDArray[np.uint8], int]:
        """The photo with at least ``wanted`` times ``rgb``'s pixels per side where it can:
        ``(pixels, reduction)``, decoded again at the coarsest JPEG scale that gives them (down
        to full size, and within the pixel limit), or ``(rgb, reduction)`` when ``rgb`` is
        already that fine or cannot get finer. Raises ``UsageError`` if the decode fails."""
        finest = self.reduction
        while (
            finest > 1
            and self.reduction / finest < wanted
            and _pixels(self.original_size, finest // 2) <= self.max_pixels
        ):
            finest //= 2
        if finest == self.reduction or self.data is None:
            return self.rgb, self.reduction
        image, _, _, decoded = open_first_frame(
            self.data, self.format, _pixels(self.original_size, finest), reduction=finest
        )
        return to_rgb(image, self.format), decoded

    def to_png(self) -> bytes:
        """The pixels re-encoded as a metadata-free PNG."""
        buffer = io.BytesIO()
        Image.fromarray(self.rgb, "RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def sniff_format(data: bytes) -> str:
    """The container format named by the first bytes of ``data`` (``"unknown"`` if unrecognised)."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        return _ftyp_kind(data)
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP archive"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "ICO"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head[:4] == b"RIFF":
        return "RIFF (audio/video)"
    if _looks_like_text(data[:512]):
        stripped = data[:512].lstrip().lower()
        if stripped.startswith((b"<svg", b"<?xml")):
            return "SVG/XML"
        return "text"
    return "unknown"


def _ftyp_kind(data: bytes) -> str:
    """HEIC, AVIF or a video, from the major and compatible brands of the ``ftyp`` box."""
    size = int.from_bytes(data[:4], "big")
    end = min(len(data), size if 16 <= size <= 4096 else 64)
    major = data[8:12]
    compatible = {data[k : k + 4] for k in range(16, end - 3, 4)}
    if major in _AVIF_BRANDS:
        return "AVIF"
    if major in _HEIC_BRANDS:
        return "HEIC"
    if compatible & _AVIF_BRANDS and not compatible & _HEIC_BRANDS:
        return "AVIF"
    if compatible & _HEIC_BRANDS or major in _HEIF_GENERIC:
        return "HEIC"
    return "MP4/MOV video"


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 9 for b in head)


def load_image(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    working_side: int | None = None,
) -> SanitizedImage:
    """Decode untrusted ``data`` into a sanitised RGB image; raise ``UsageError`` if unusable.

    ``working_side``: the caller needs no more than this many pixels along the long side, so
    a JPEG at least twice that long is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
    keeps its long side at or above it (``SanitizedImage.reduction``); ``max_pixels`` then
    limits the pixels decoded. Other formats are decoded at full size."""
    if not data:
        raise UsageError("the photo is empty (0 bytes)")
    if len(data) > max_bytes:
        raise UsageError(
            f"the photo is too large ({len(data) / 1e6:.1f} MB); the limit is {max_bytes / 1e6:.1f} MB"
        )
    kind = sniff_format(data)
    if kind not in _DECODERS:
        described = _REFUSED_AS.get(kind, f"a {kind} file")
        raise UsageError(f"the photo is {described}; send a {SUPPORTED} photo")
    if kind in _ISOLATED:
        # libheif/libde265 are C decoders with a history of memory-safety bugs: a damaged HEIC
        # may crash them, so they run in a child process (moderation.isolated_decode).
        from moderation.isolated_decode import decode_in_child

        rgb, (width, height), notes = decode_in_child(data, kind, max_pixels)
    else:
        rgb, (width, height), notes, reduction = decode_pixels(data, kind, max_pixels, working_side)
        out_h, out_w = rgb.shape[:2]
        _check_shape(out_w, out_h)
        return SanitizedImage(
            rgb=rgb,
            format=kind,
            original_size=(width, height),
            warnings=tuple(notes),
            reduction=reduction,
            data=data if reduction > 1 else None,
            max_pixels=max_pixels,
        )

    out_h, out_w = rgb.shape[:2]
    _check_shape(out_w, out_h)
    return SanitizedImage(
        rgb=rgb,
        format=kind,
        original_size=(width, height),
        warnings=tuple(notes),
        max_pixels=max_pixels,
    )


def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF with ``pi-heif`` (idempotent; imported only when needed)."""
    try:
        from pi_heif import register_heif_opener
    except ImportError:  # a broken install: it is a base dependency
        raise UsageError(
            "the photo is a HEIC/HEIF file, but the pi-heif decoder is not installed "
            "(pip install pi-heif); or send a JPEG, PNG, WebP or AVIF photo"
        ) from None
    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def decode_pixels(
    data: bytes, kind: str, max_pixels: int, working_side: int | None = None
) -> tuple[NDArray[np.uint8], tuple[int, int], list[str], int]:
    """Decode sniffed ``kind`` in this process: (RGB pixels, stored (width, height), notes,
    reduction).

    ``open_first_frame`` then ``to_rgb``; raises ``UsageError`` for anything unusable. A plain
    JPEG that is decoded at full size goes the quicker way of ``decode_jpeg`` (the same
    pixels); one at least twice ``working_side`` long is decoded smaller (``load_image``).
    """
    if kind == "JPEG":
        quick = decode_jpeg(data, max_pixels, working_side)
        if quick is not None:
            return (*quick, 1)
    image, size, notes, reduction = open_first_frame(
        data, kind, max_pixels, working_side=working_side
    )
    return to_rgb(image, kind), size, notes, reduction


def jpeg_reduction(size: tuple[int, int], working_side: int | None) -> int:
    """The DCT scale divisor (1, 2, 4 or 8) at which a JPEG of ``size`` (width, height) keeps a
    long side of at least ``working_side`` (1 without one)."""
    reduction = 1
    if working_side is None:
        return reduction
    for candidate in JPEG_REDUCTIONS:
        if max(size) // candidate >= working_side:
            reduction = candidate
    return reduction


def _pixels(size: tuple[int, int], reduction: int) -> int:
    """Pixels of a picture of ``size`` decoded at 1/``reduction`` (rounded up, as libjpeg)."""
    return -(-size[0] // reduction) * -(-size[1] // reduction)


# EXIF orientation (tag 0x0112) -> how OpenCV turns the stored pixels upright, as Pillow's
# ``ImageOps.exif_transpose`` does: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
# 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 anticlockwise.
_EXIF_ORIENTATION = 0x0112
# libjpeg(-turbo)'s warnings (jerror.h, JWRN_*), which OpenCV lets it print on stderr.
_LIBJPEG_WARNING = re.compile(
    r"(Corrupt JPEG data|Premature end of JPEG file|Inconsistent progression sequence"
    r"|Invalid SOS parameters|Unknown Adobe color transform|Warning: unknown JFIF revision"
    r"|Application transferred too)"
)


def _is_libjpeg_warning(line: str) -> bool:
    return _LIBJPEG_WARNING.match(line) is not None


_TURNS = frozenset(range(2, 9))


def decode_jpeg(
    data: bytes, max_pixels: int, working_side: int | None = None
) -> tuple[NDArray[np.uint8], tuple[int, int], list[str]] | None:
    """A plain JPEG (one RGB or grey picture, ending at its end-of-image marker) decoded by
    OpenCV straight into an array, then turned upright as its EXIF orientation says:
    (RGB pixels, stored (width, height), notes), or None for anything else.

    Pillow reads the header and EXIF (and rewrites the EXIF as ``ImageOps.exif_transpose`` does
    when it turns a photo, so damaged metadata is noted alike) and checks the compressed data:
    it decodes the file at 1/8 scale (every coefficient is still read, so a broken data stream
    fails as it does at full size). OpenCV's libjpeg-turbo decodes the pixels with the settings
    Pillow uses, so they are Pillow's own (``tests/test_intake_phone_formats.py`` compares them
    for every orientation); OpenCV alone would accept a damaged stream as grey blocks. What
    this saves is Pillow's full-size decode and its copy of the picture into a packed buffer
    and then into numpy: about 0.07 s for a 12 MP phone photo. None (CMYK, several pictures,
    data after the end marker, a damaged or oversized file, a failed decode) sends the caller
    to ``open_first_frame``, which decodes the rest and words every refusal, and so does a
    photo to be decoded smaller for ``working_side`` (Pillow decodes it at once at that scale,
    its check included: there is no full-size decode to save). So does a stream
    that OpenCV's libjpeg warns about ("Corrupt JPEG data: ..."): the warning is caught
    (``livingphoto.stderr_capture``), never shown, and Pillow decodes that photo as before."""
    if not data.endswith(b"\xff\xd9"):
        return None  # truncated, or trailing data (a motion photo's video): Pillow's way
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[_DECODERS["JPEG"]])
            width, height = image.size
            if (
                image.mode not in ("RGB", "L")
                or int(getattr(image, "n_frames", 1)) > 1
                or width * height > max_pixels
                or jpeg_reduction((width, height), working_side) > 1
            ):
                return None
            exif = image.getexif()
            orientation = exif.get(_EXIF_ORIENTATION, 1)
            if orientation in _TURNS:
                del exif[_EXIF_ORIENTATION]
                exif.tobytes()  # what exif_transpose does: loads (and warns about) sub-IFDs
            image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
        except Exception:  # damaged, or a decompression bomb: Pillow's way words it
            return None
    short, long = min(width, height), max(width, height)
    if short < MIN_SHORT_SIDE or long / short > MAX_ASPECT:
        return None
    import cv2
    import numpy as np

    grey = image.mode == "L"
    # Colour decodes straight to RGB (OpenCV 4.10+): no BGR copy to convert (a 12 MP photo's
    # 36 MB, ~10 ms and the page faults of a second buffer).
    flags = cv2.IMREAD_IGNORE_ORIENTATION | (cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR_RGB)
    try:
        with captured_stderr(_is_libjpeg_warning) as complaints:
            stored = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except OSError:  # stderr cannot be redirected: Pillow's way
        return None
    if complaints.lines:
        return None  # a damaged stream libjpeg warned about: Pillow's way decodes it silently
    if stored is None or stored.shape[:2] != (height, width):
        return None
    rgb = cv2.cvtColor(stored, cv2.COLOR_GRAY2RGB) if grey else stored
    if orientation == 2:
        rgb = cv2.flip(rgb, 1)
    elif orientation == 3:
        rgb = cv2.rotate(rgb, cv2.ROTATE_180)
    elif orientation == 4:
        rgb = cv2.flip(rgb, 0)
    elif orientation == 5:
        rgb = cv2.transpose(rgb)
    elif orientation == 6:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_CLOCKWISE)
    elif orientation == 7:
        rgb = cv2.flip(cv2.transpose(rgb), -1)
    elif orientation == 8:
        rgb = cv2.rotate(rgb, cv2.ROTATE_90_COUNTERCLOCKWISE)
    notes = ["the photo's metadata was damaged and has been ignored"] if caught else []
    return np.ascontiguousarray(rgb, dtype=np.uint8), (width, height), notes


def open_first_frame(
    data: bytes,
    kind: str,
    max_pixels: int,
    *,
    working_side: int | None = None,
    reduction: int | None = None,
) -> tuple[Image.Image, tuple[int, int], list[str], int]:
    """Open sniffed ``kind`` with Pillow: (the first frame, decoded and oriented, the stored
    (width, height), notes, the reduction it was decoded at). A JPEG is decoded at
    1/``reduction`` of its size when given, else at ``jpeg_reduction(size, working_side)``.
    Applies our pixel limit (to the pixels decoded) before decoding and makes Pillow's bomb
    warning an error; raises ``UsageError`` for anything unusable. Needs Pillow only."""
    if kind == "HEIC":
        _register_heif()
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        # Pillow's own complaints (e.g. corrupt EXIF) must not reach the user's terminal.
        warnings.simplefilter("always")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Not closed here: a closed image loses its pixels, and the data is in memory anyway.
            im = Image.open(io.BytesIO(data), formats=[_DECODERS[kind]])
            width, height = im.size
            scale = 1
            if kind == "JPEG":
                scale = reduction or jpeg_reduction((width, height), working_side)
            if _pixels((width, height), scale) > max_pixels:
                raise UsageError(
                    f"the photo has too many pixels ({width}x{height}); "
                    f"the limit is {max_pixels / 1e6:.0f} megapixels"
                )
            _check_shape(width, height)
            frames = int(getattr(im, "n_frames", 1))
            if frames > 1:
                im.seek(0)
                what = "a burst or sequence" if kind == "HEIC" else "animated"
                notes.append(f"the photo is {what} ({frames} frames); the first frame was used")
            if scale > 1:
                # libjpeg's DCT scaling: the decoder makes the smaller picture directly.
                im.draft(None, (-(-width // scale), -(-height // scale)))
            im.load()
            # Turned as its EXIF orientation says, in place: no copy of a photo that is upright.
            ImageOps.exif_transpose(im, in_place=True)
            oriented = im
        except UsageError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise UsageError(
                "the photo decodes to far too many pixels (a decompression bomb)"
            ) from None
        except UnidentifiedImageError:
            raise UsageError(f"the photo is a corrupt {kind} file") from None
        except SyntaxError as error:
            raise UsageError(f"the photo is a corrupt {kind} file ({_short(error)})") from None
        except (OSError, ValueError, EOFError, IndexError, MemoryError) as error:
            if "truncated" in str(error).lower() or isinstance(error, EOFError):
                raise UsageError(f"the photo is a truncated {kind} file") from None
            raise UsageError(
                f"the photo could not be decoded as {kind} ({_short(error)})"
            ) from None
        except Exception as error:  # malformed headers/EXIF can raise almost anything
            raise UsageError(f"the photo is a corrupt {kind} file ({_short(error)})") from None
    if caught:
        notes.append("the photo's metadata was damaged and has been ignored")
    decoded = max(1, round(max(width, height) / max(oriented.size)))
    return oriented, (width, height), notes, decoded


def to_rgb(image: Image.Image, kind: str) -> NDArray[np.uint8]:
    """Any decoded mode -> a contiguous RGB ``uint8`` array (H, W, 3); ``UsageError`` if not."""
    try:
        return _to_rgb(image)
    except Exception as error:  # an odd mode Pillow cannot convert
        raise UsageError(f"the photo could not be decoded as {kind} ({_short(error)})") from None


def load_image_file(
    path: Path | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    working_side: int | None = None,
) -> SanitizedImage:
    """Read and sanitise the photo at ``path`` (``load_image``); every failure is a one-line
    ``UsageError``."""
    p = Path(path)
    try:
        if not p.exists():
            raise UsageError(f"no such file: {p}")
        if p.is_dir():
            raise UsageError(f"{p} is a directory, not a photo")
        if not p.is_file():
            raise UsageError(f"{p} is not a regular file")
        size = p.stat().st_size
        if size == 0:
            raise UsageError(f"{p} is empty (0 bytes)")
        if size > max_bytes:
            raise UsageError(
                f"{p} is too large ({size / 1e6:.1f} MB); the limit is {max_bytes / 1e6:.1f} MB"
            )
        data = p.read_bytes()
    except PermissionError:
        raise UsageError(f"cannot read {p}: permission denied") from None
    except OSError as error:
        raise UsageError(f"cannot read {p}: {error.strerror or _short(error)}") from None
    return load_image(data, max_bytes=max_bytes, max_pixels=max_pixels, working_side=working_side)


def _check_shape(width: int, height: int) -> None:
    short, long = min(width, height), max(width, height)
    if short < MIN_SHORT_SIDE:
        raise UsageError(
            f"the photo is too small ({width}x{height}); "
            f"the short side must be at least {MIN_SHORT_SIDE} px"
        )
    if long / short > MAX_ASPECT:
        raise UsageError(
            f"the photo is too elongated ({width}x{height}); "
            f"the long side may be at most {MAX_ASPECT:g}x the short side"
        )


def _to_rgb(im: Image.Image) -> NDArray[np.uint8]:
    """Any decoded mode -> RGB uint8, scaling 16-bit data and compositing alpha on white."""
    import numpy as np

    mode = im.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        raw = np.asarray(im)
        wide = raw.astype(np.float32)
        top = 65535.0 if mode.startswith("I;16") or raw.max(initial=0) > 255 else 255.0
        grey = np.clip(wide * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "F":
        raw_f = np.asarray(im, dtype=np.float32)
        top_f = float(raw_f.max(initial=1.0)) or 1.0
        grey = np.clip(raw_f * (255.0 / top_f), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    has_alpha = mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        mode in {"P", "L", "RGB"} and "transparency" in im.info
    )
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return np.asarray(white.convert("RGB"), dtype=np.uint8).copy()
    rgb = im if mode == "RGB" else im.convert("RGB")  # converting an RGB image only copies it
    return np.array(rgb, dtype=np.uint8)


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:120]
