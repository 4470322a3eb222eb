"""Intake of photos as phones send them (issue 13 part 2): HEIC/HEIF (decoded with pi-heif in a
child process) and AVIF (Pillow), with the same guarantees as JPEG: sniffed by content (a HEIC
named .jpg), orientation applied, metadata gone, our pixel limit before decoding, the first frame
of a burst or sequence, 10-bit HEIF scaled to 8 bits, one-line errors naming what is supported."""

from __future__ import annotations

import base64
import io
import re
import signal
import sys
from pathlib import Path

import images
import numpy as np
import phone_images
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from livingphoto.errors import UsageError
from moderation.intake import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED,
    decode_jpeg,
    load_image,
    load_image_file,
    open_first_frame,
    sniff_format,
    to_rgb,
)
from moderation.isolated_decode import decode_in_child

DATA = Path(__file__).parent / "data"
HEIC = phone_images.heic_bytes()
AVIF = phone_images.avif_bytes()
SOURCE = np.asarray(images.portrait_rgb(), dtype=np.float32)


@pytest.mark.parametrize(("data", "kind"), [(HEIC, "HEIC"), (AVIF, "AVIF")])
def test_phone_formats_decode_to_the_same_pixels(data: bytes, kind: str) -> None:
    result = load_image(data)
    assert result.format == kind
    assert result.rgb.shape == (400, 320, 3) and result.rgb.dtype == np.uint8
    assert float(np.abs(result.rgb.astype(np.float32) - SOURCE).mean()) < 6.0


def test_heic_named_jpg_is_sniffed_by_content(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(HEIC)
    assert load_image_file(photo).format == "HEIC"
    avif = tmp_path / "download.png"
    avif.write_bytes(AVIF)
    assert load_image_file(avif).format == "AVIF"


@pytest.mark.parametrize("encode", [phone_images.heic_bytes, phone_images.avif_bytes])
def test_orientation_is_applied_like_jpeg(encode: object) -> None:
    stored = images.portrait_rgb(400, 300)  # landscape as stored, "rotate 90 CW" to display
    assert callable(encode)
    result = load_image(encode(stored, orientation=6))
    jpeg = load_image(images.jpeg_with_exif_orientation_and_gps())
    assert result.rgb.shape == jpeg.rgb.shape == (400, 300, 3)
    difference = np.abs(result.rgb.astype(np.float32) - jpeg.rgb.astype(np.float32)).mean()
    assert float(difference) < 8.0


@pytest.mark.parametrize("data", [HEIC, AVIF], ids=["heic", "avif"])
def test_metadata_is_gone(data: bytes) -> None:
    assert b"LeakyCam" in data and b"GPSLatitude" in data  # the input does carry it
    png = load_image(data).to_png()
    reopened = Image.open(io.BytesIO(png))
    assert not reopened.getexif()
    assert not {"xmp", "exif", "icc_profile", "XML:com.adobe.xmp"} & set(reopened.info)
    assert b"LeakyCam" not in png and b"GPS" not in png


def test_ten_bit_heif_is_scaled_not_clipped() -> None:
    rgb = load_image(phone_images.heic_10bit()).rgb
    assert rgb[:, :4].max() < 10  # the ramp starts black
    assert rgb[:, -4:].min() > 245  # and ends white
    assert 100 < float(rgb.mean()) < 155


@pytest.mark.parametrize(
    ("data", "kind"),
    [(phone_images.heic_burst(), "HEIC"), (phone_images.avif_sequence(), "AVIF")],
    ids=["heic-burst", "avif-sequence"],
)
def test_burst_or_sequence_uses_the_first_frame(data: bytes, kind: str) -> None:
    result = load_image(data)
    assert result.format == kind
    red, green, blue = (float(result.rgb[..., c].mean()) for c in range(3))
    assert red > 180 and green < 70 and blue < 70
    assert any("first frame" in w and "3 frames" in w for w in result.warnings)


@pytest.mark.parametrize("data", [HEIC, AVIF], ids=["heic", "avif"])
def test_pixel_limit_applies_before_decoding(data: bytes) -> None:
    with pytest.raises(UsageError, match="too many pixels"):
        load_image(data, max_pixels=10_000)


@pytest.mark.parametrize("data", [HEIC, AVIF], ids=["heic", "avif"])
def test_truncated_phone_photo_is_one_line(data: bytes) -> None:
    with pytest.raises(UsageError) as caught:
        load_image(data[: len(data) // 2])
    message = str(caught.value)
    assert "\n" not in message and ("HEIC" in message or "AVIF" in message)
    assert "0x" not in message  # no object addresses


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00" * 16


def test_sniffer_reads_major_and_compatible_brands() -> None:
    assert sniff_format(HEIC) == "HEIC"
    assert sniff_format(AVIF) == "AVIF"
    assert sniff_format(phone_images.avif_sequence()) == "AVIF"
    assert sniff_format(_ftyp(b"mif1", b"mif1", b"avif", b"miaf")) == "AVIF"
    assert sniff_format(_ftyp(b"mif1", b"mif1", b"heic")) == "HEIC"
    assert sniff_format(_ftyp(b"msf1", b"msf1", b"hevc")) == "HEIC"
    assert sniff_format(_ftyp(b"isom", b"isom", b"mp41")) == "MP4/MOV video"
    assert sniff_format(_ftyp(b"qt  ")) == "MP4/MOV video"


REFUSED_KINDS = {
    "bmp": (images.bmp_bytes(), "a BMP image"),
    "mp4": (_ftyp(b"isom", b"mp41"), "an MP4/MOV video"),
    "pdf": (b"%PDF-1.7 " + b"x" * 64, "a PDF document"),
    "ico": (b"\x00\x00\x01\x00" + b"\x01" * 64, "an ICO icon"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "an SVG/XML file"),
    "tiff": (images.encode(images.portrait_rgb(80, 80), "TIFF"), "a TIFF image"),
    "unknown": (bytes(range(256)), "not an image format we recognise"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_KINDS))
def test_unsupported_file_says_what_is_supported_in_good_grammar(name: str) -> None:
    data, described = REFUSED_KINDS[name]
    with pytest.raises(UsageError) as caught:
        load_image(data)
    message = str(caught.value)
    assert message == f"the photo is {described}; send a {SUPPORTED} photo"
    assert "HEIC" in message and "AVIF" in message
    # "a AVIF", "a MP4", "a ICO": an article that does not fit the sound of the next word
    assert not re.search(r"\ba (?:[AEIOU]|MP4|SVG|HEIF\b|F|L|M|N|R|S|X)[A-Z]", message)


def test_a_crashing_decoder_costs_one_photo_not_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crasher = tmp_path / "python"
    crasher.write_text(f"#!/bin/sh\nkill -{signal.SIGSEGV.name[3:]} $$\n")
    crasher.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(crasher))
    with pytest.raises(UsageError, match="damaged HEIC file"):
        load_image(HEIC)


def test_a_hanging_decoder_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeper = tmp_path / "python"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(sleeper))
    with pytest.raises(UsageError, match=r"took over 0\.5 s"):
        decode_in_child(HEIC, "HEIC", 1_000_000, timeout_s=0.5)


def test_damaged_heic_that_crashed_pi_heif_in_process_is_one_line() -> None:
    # A fuzzed HEIC (tests/data/damaged_heic_segfault.b64, made from phone_images.heic_bytes
    # with random byte flips) that made pi-heif 1.4.0 crash the whole Python process.
    data = base64.b64decode((DATA / "damaged_heic_segfault.b64").read_text())
    with pytest.raises(UsageError) as caught:
        load_image(data)
    assert "\n" not in str(caught.value)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    base=st.sampled_from(["heic", "avif"]),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 100),
)
def test_mangled_phone_photos_never_escape_as_other_errors(
    base: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(HEIC if base == "heic" else AVIF)
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: max(1, len(data) * (100 - cut) // 100)]
    try:
        result = load_image(bytes(data))
    except UsageError as error:
        assert "\n" not in str(error)
    else:
        assert result.rgb.dtype == np.uint8 and result.rgb.shape[2] == 3


# -- the quick JPEG path: OpenCV's decoder, Pillow's pixels -----------------------------------


def _pillow_decode(data: bytes) -> np.ndarray:
    """What Pillow alone makes of ``data`` (``open_first_frame`` and ``to_rgb``)."""
    image, _, _, _ = open_first_frame(data, "JPEG", DEFAULT_MAX_PIXELS)
    return to_rgb(image, "JPEG")


def _jpeg(orientation: int = 1, mode: str = "RGB", **params: object) -> bytes:
    picture = images.portrait_rgb(240, 168).convert(mode)  # stored landscape, not square
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    return images.encode(picture, "JPEG", quality=88, exif=exif.tobytes(), **params)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_quick_jpeg_path_gives_pillows_pixels_in_every_orientation(
    orientation: int, mode: str
) -> None:
    data = _jpeg(orientation, mode)
    quick = decode_jpeg(data, DEFAULT_MAX_PIXELS)
    assert quick is not None
    rgb, stored, notes = quick
    assert stored == (240, 168) and notes == []
    expected = _pillow_decode(data)
    assert rgb.shape == expected.shape and rgb.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(rgb, expected)
    assert load_image(data).rgb.shape == expected.shape


def test_quick_jpeg_path_reads_progressive_and_full_chroma_jpegs() -> None:
    for data in (_jpeg(6, progressive=True), _jpeg(3, subsampling=0)):
        quick = decode_jpeg(data, DEFAULT_MAX_PIXELS)
        assert quick is not None
        np.testing.assert_array_equal(quick[0], _pillow_decode(data))


def test_jpegs_the_quick_path_leaves_to_pillow_still_decode_or_are_refused() -> None:
    with_video = _jpeg(6) + b"\x00\x00\x00\x18ftypmp42" + bytes(64)  # a motion photo's tail
    cmyk = images.cmyk_jpeg()
    for data in (with_video, cmyk):
        assert decode_jpeg(data, DEFAULT_MAX_PIXELS) is None
        assert load_image(data).rgb.dtype == np.uint8
    assert load_image(with_video).rgb.shape == (240, 168, 3)  # turned upright all the same
    assert decode_jpeg(_jpeg(), max_pixels=1000) is None
    with pytest.raises(UsageError, match="too many pixels"):
        load_image(_jpeg(), max_pixels=1000)
    assert decode_jpeg(images.truncated_jpeg(), DEFAULT_MAX_PIXELS) is None
    with pytest.raises(UsageError, match="truncated"):
        load_image(images.truncated_jpeg())


@given(start=st.integers(2, 400), length=st.integers(1, 40), fill=st.integers(0, 255))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_damaged_jpeg_decodes_as_pillow_decodes_it_or_is_one_line(
    start: int, length: int, fill: int
) -> None:
    damaged = bytearray(_jpeg(6))
    damaged[start : start + length] = bytes([fill]) * length
    quick = decode_jpeg(bytes(damaged), DEFAULT_MAX_PIXELS)
    try:
        result = load_image(bytes(damaged))
    except UsageError as error:
        assert quick is None and "\n" not in str(error)
        return
    if quick is not None:
        np.testing.assert_array_equal(quick[0], result.rgb)
        np.testing.assert_array_equal(quick[0], _pillow_decode(bytes(damaged)))


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _exif(*entries: tuple[int, int, int, bytes]) -> bytes:
    """A little-endian EXIF block with these IFD0 entries (tag, type, count, value)."""
    tiff = b"II*\x00" + (8).to_bytes(4, "little") + len(entries).to_bytes(2, "little")
    for tag, kind, count, value in entries:
        tiff += tag.to_bytes(2, "little") + kind.to_bytes(2, "little")
        tiff += count.to_bytes(4, "little") + value
    return b"Exif\x00\x00" + tiff + bytes(4)


def test_a_broken_data_stream_is_refused_as_pillow_refuses_it() -> None:
    # OpenCV alone decodes these as grey blocks; Pillow refuses them, and so must we.
    noisy = images.encode(
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)),
        "JPEG",
        quality=90,
    )
    start = _scan_start(noisy)
    for damaged in (
        noisy[: start + 5000] + b"\xff" + noisy[start + 5001 :],  # a stray 0xFF in the scan
        noisy[:-2] + b"\xff\x4f\x00\xff\xd9",  # a marker before the end
    ):
        assert decode_jpeg(damaged, DEFAULT_MAX_PIXELS) is None
        with pytest.raises(UsageError, match="could not be decoded as JPEG"):
            load_image(damaged)


@pytest.mark.parametrize("pointer", [(0x8825, 0), (0x8769, 0x7FFFFF)])
def test_damaged_metadata_is_noted_when_the_photo_is_turned(pointer: tuple[int, int]) -> None:
    tag, offset = pointer  # a GPS pointer of 0, an Exif pointer past the end
    exif = _exif(
        (0x0112, 3, 1, (6).to_bytes(2, "little") + bytes(2)),
        (tag, 4, 1, offset.to_bytes(4, "little")),
    )
    data = images.encode(images.portrait_rgb(240, 168), "JPEG", quality=88, exif=exif)
    quick = decode_jpeg(data, DEFAULT_MAX_PIXELS)
    assert quick is not None
    assert quick[2] == ["the photo's metadata was damaged and has been ignored"]
    assert load_image(data).rgb.shape == (240, 168, 3)


def test_a_decompression_bomb_is_refused_even_under_a_raised_pixel_limit() -> None:
    data = images.encode(Image.new("L", (10_000, 9_000), 128), "JPEG", quality=50)
    assert decode_jpeg(data, max_pixels=100_000_000) is None
    with pytest.raises(UsageError, match="decompression bomb"):
        load_image(data, max_pixels=100_000_000)


def test_a_stream_libjpeg_warns_about_decodes_as_before_and_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Cut short and closed with an end marker: Pillow decodes it silently (grey at the bottom);
    # OpenCV's libjpeg would print "Corrupt JPEG data: premature end of data segment".
    whole = _jpeg(6)
    damaged = whole[: len(whole) * 6 // 10] + b"\xff\xd9"
    capfd.readouterr()
    assert decode_jpeg(damaged, DEFAULT_MAX_PIXELS) is None
    result = load_image(damaged)
    np.testing.assert_array_equal(result.rgb, _pillow_decode(damaged))
    assert capfd.readouterr().err == ""
