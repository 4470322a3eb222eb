"""Intake: every bad photo kind is refused with a one-line UsageError; odd-but-valid ones decode."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import images
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from livingphoto.errors import UsageError
from moderation.intake import load_image, load_image_file, sniff_format

BAD = images.bad_images()
ODD = images.odd_images()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zero-bytes", "empty"),
        ("text-renamed-jpg", "not an image"),
        ("truncated-jpeg", "truncated JPEG"),
        ("decompression-bomb-png", "too many pixels"),
        ("one-by-one", "too small"),
        ("strip-30000x200", "too elongated"),
        ("bmp", "BMP"),
    ],
)
def test_bad_images_are_refused_with_one_line(name: str, expected: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_image(BAD[name])
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_pixel_limit_is_ours_not_pillows() -> None:
    # 2000 x 2000 = 4 MP is fine for Pillow but above a 1 MP limit: refused before decoding.
    data = images.encode(Image.new("L", (2000, 2000), 0), "PNG")
    with pytest.raises(UsageError, match="too many pixels"):
        load_image(data, max_pixels=1_000_000)


def test_byte_limit() -> None:
    with pytest.raises(UsageError, match="too large"):
        load_image(images.jpeg_bytes(), max_bytes=1000)


def test_bomb_is_small_on_disk() -> None:
    assert len(BAD["decompression-bomb-png"]) < 100_000


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_images_become_plain_rgb(name: str) -> None:
    result = load_image(ODD[name])
    assert result.rgb.dtype == np.uint8
    assert result.rgb.ndim == 3 and result.rgb.shape[2] == 3
    assert result.rgb.flags["C_CONTIGUOUS"]


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    rgb = load_image(ODD["png-16bit"]).rgb
    assert rgb[:, 0].max() < 10  # ramp starts black
    assert rgb[:, -1].min() > 245  # and ends white (not clipped at 255 from the start)
    assert 100 < float(rgb.mean()) < 155


def test_alpha_is_composited_on_white() -> None:
    rgb = load_image(ODD["la-png"]).rgb
    grey = np.asarray(images.portrait_rgb().convert("L"), dtype=np.float32)
    # 50 % alpha over white: every pixel is lifted halfway to white.
    expected = grey * (128 / 255) + 255 * (1 - 128 / 255)
    assert abs(float(rgb[:, :, 0].mean()) - float(expected.mean())) < 2.0


def test_cmyk_colours_survive() -> None:
    rgb = load_image(ODD["cmyk-jpeg"]).rgb.astype(np.float32)
    reference = np.asarray(images.portrait_rgb(), dtype=np.float32)
    assert float(np.abs(rgb - reference).mean()) < 20.0


def test_animated_gif_uses_first_frame_with_warning() -> None:
    result = load_image(ODD["animated-gif"])
    assert result.format == "GIF"
    assert any("first frame" in w for w in result.warnings)


def test_exif_orientation_applied_and_metadata_gone() -> None:
    result = load_image(ODD["exif-orientation-gps-jpeg"])
    assert result.original_size == (400, 300)
    assert result.rgb.shape[:2] == (400, 300)  # rotated to portrait: H=400, W=300
    png = result.to_png()
    reopened = Image.open(io.BytesIO(png))
    assert not reopened.getexif()
    assert b"LeakyCam" not in png and b"GPS" not in png


def test_sniffer_names_real_formats() -> None:
    assert sniff_format(images.jpeg_bytes()) == "JPEG"
    assert sniff_format(images.webp_bytes()) == "WEBP"
    assert sniff_format(b"%PDF-1.7 ...") == "PDF"
    assert sniff_format(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 20) == "HEIC"
    assert sniff_format(images.text_as_jpg()) == "text"


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_image_file(tmp_path / "missing.jpg")
    with pytest.raises(UsageError, match="directory"):
        load_image_file(tmp_path)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="empty"):
        load_image_file(empty)
    with pytest.raises(UsageError, match="not a regular file"):
        load_image_file(Path("/dev/null"))
    big = tmp_path / "big.jpg"
    big.write_bytes(images.jpeg_bytes())
    with pytest.raises(UsageError, match="too large"):
        load_image_file(big, max_bytes=100)
    assert load_image_file(big).rgb.shape == (400, 320, 3)


MANGLE_SOURCES = {
    "jpeg": images.jpeg_bytes(96, 96),
    "png": images.encode(images.portrait_rgb(96, 96), "PNG"),
    "gif": images.encode(images.portrait_rgb(80, 80).convert("P"), "GIF"),
    "webp": images.encode(images.portrait_rgb(96, 96), "WEBP"),
    "exif": images.jpeg_with_exif_orientation_and_gps(120, 90),
}


@settings(max_examples=80, deadline=None)
@given(
    base=st.sampled_from(["jpeg", "png", "gif", "webp", "exif"]),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 100),
)
def test_mangled_photos_never_escape_as_other_errors(
    base: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(MANGLE_SOURCES[base])
    for position, value in flips:
        data[position % len(data)] = value
    data = data[: max(1, len(data) * (100 - cut) // 100)]
    try:
        result = load_image(bytes(data))
    except UsageError as error:
        assert "\n" not in str(error)
    else:
        assert result.rgb.dtype == np.uint8 and result.rgb.shape[2] == 3


def test_damaged_exif_is_ignored_quietly() -> None:
    data = bytearray(images.jpeg_with_exif_orientation_and_gps(120, 90))
    start = data.index(b"Exif\x00\x00")
    data[start + 20 : start + 60] = b"\xff" * 40  # scribble over the IFD entries
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping intake would fail here
        try:
            result = load_image(bytes(data))
        except UsageError:
            return  # refusing it is fine too; leaking a warning is not
    assert result.rgb.ndim == 3
