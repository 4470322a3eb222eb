"""Big JPEGs decoded smaller (``load_image(..., working_side=...)``, libjpeg's DCT scaling) and
framed as if decoded whole: the reduction chosen, orientation, the pixel limit on the pixels
decoded, ``SanitizedImage.finer``, framing in source pixels, and ``animate``'s JSON faces."""

from __future__ import annotations

import io
import json
from pathlib import Path

import images
import numpy as np
import pytest
from PIL import Image

from generation.animate_cli import WORKING_SIDE
from generation.animator import Inspection
from generation.faces import DETECT_LONG_SIDE, FaceModel
from generation.preprocess import frame_subject
from generation.subject import find_subject
from livingphoto.cli import main
from livingphoto.errors import UsageError
from moderation.intake import SanitizedImage, jpeg_reduction, load_image

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"


def big_photo(width: int = 3200, height: int = 2400, face_side: int = 1400) -> Image.Image:
    """The astronaut (``face_side`` px square) on a plain, lightly noisy background."""
    portrait = Image.open(ASTRONAUT).convert("RGB").resize((face_side, face_side), Image.LANCZOS)
    rng = np.random.default_rng(3)
    canvas = np.full((height, width, 3), (96, 118, 140), np.int16)
    canvas += rng.normal(0, 3, canvas.shape).astype(np.int16)
    photo = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    photo.paste(portrait, ((width - face_side) * 2 // 3, (height - face_side) // 3))
    return photo


def jpeg(im: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=90, **params)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return jpeg(big_photo())


def test_the_reduction_keeps_the_long_side_at_least_the_working_side() -> None:
    assert jpeg_reduction((4032, 3024), None) == 1
    assert jpeg_reduction((4032, 3024), 1600) == 2
    assert jpeg_reduction((3024, 4032), 1600) == 2
    assert jpeg_reduction((8064, 6048), 1600) == 4
    assert jpeg_reduction((16000, 12000), 1600) == 8
    assert jpeg_reduction((3000, 2000), 1600) == 1  # 1500 px would be under it
    assert jpeg_reduction((512, 512), 64) == 8


def test_the_working_side_covers_the_finer_face_search_and_the_largest_size() -> None:
    assert WORKING_SIDE >= 2 * DETECT_LONG_SIDE
    assert WORKING_SIDE >= 1024  # animate --size is at most 1024


def test_a_big_jpeg_decodes_smaller_and_close_to_the_whole_photo_shrunk(big_jpeg: bytes) -> None:
    whole = load_image(big_jpeg)
    half = load_image(big_jpeg, working_side=1600)
    quarter = load_image(big_jpeg, working_side=800)
    assert (whole.reduction, whole.data) == (1, None)
    assert half.reduction == 2 and half.rgb.shape == (1200, 1600, 3)
    assert quarter.reduction == 4 and quarter.rgb.shape == (600, 800, 3)
    assert half.original_size == whole.original_size == (3200, 2400)
    assert half.data == big_jpeg  # kept for ``finer``
    shrunk = np.asarray(Image.fromarray(whole.rgb).resize((1600, 1200), Image.BOX))
    assert np.abs(shrunk.astype(int) - half.rgb.astype(int)).mean() < 2.0
    # Too small to halve: decoded whole.
    assert load_image(big_jpeg, working_side=2000).reduction == 1


def test_other_formats_are_decoded_whole() -> None:
    png = io.BytesIO()
    big_photo(2000, 1600, 800).save(png, "PNG")
    image = load_image(png.getvalue(), working_side=400)
    assert image.reduction == 1 and image.rgb.shape == (1600, 2000, 3)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_turned_jpeg_decodes_smaller_and_upright(orientation: int) -> None:
    upright = big_photo(2400, 1800, 1000)
    turn = {
        3: Image.Transpose.ROTATE_180,
        6: Image.Transpose.ROTATE_90,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright.transpose(turn)  # orientation N turns the stored picture back upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg(stored, exif=exif.tobytes())
    image = load_image(data, working_side=1000)
    assert image.reduction == 2
    assert image.rgb.shape == (900, 1200, 3)  # upright, like the photo before it was stored
    expected = np.asarray(upright.resize((1200, 900), Image.BOX))
    assert np.abs(expected.astype(int) - image.rgb.astype(int)).mean() < 3.0


def test_the_pixel_limit_applies_to_the_pixels_decoded(big_jpeg: bytes) -> None:
    with pytest.raises(UsageError, match="too many pixels"):
        load_image(big_jpeg, max_pixels=2_000_000)
    image = load_image(big_jpeg, max_pixels=2_000_000, working_side=1600)
    assert image.rgb.shape == (1200, 1600, 3)
    # Finer would break the limit: it stays as it is.
    pixels, reduction = image.finer(2.0)
    assert reduction == 2 and pixels is image.rgb


def test_finer_decodes_again_at_the_coarsest_scale_that_gives_the_detail(big_jpeg: bytes) -> None:
    whole = load_image(big_jpeg)
    quarter = load_image(big_jpeg, working_side=800)
    pixels, reduction = quarter.finer(1.0)
    assert reduction == 4 and pixels is quarter.rgb
    pixels, reduction = quarter.finer(1.5)
    assert reduction == 2 and pixels.shape == (1200, 1600, 3)
    pixels, reduction = quarter.finer(3.0)
    assert reduction == 1 and np.array_equal(pixels, whole.rgb)
    pixels, reduction = quarter.finer(100.0)  # no finer than full size
    assert reduction == 1 and pixels.shape == whole.rgb.shape


def test_a_damaged_jpeg_decoded_smaller_is_refused_in_one_line(big_jpeg: bytes) -> None:
    with pytest.raises(UsageError, match=r"^the photo is a truncated JPEG file$"):
        load_image(big_jpeg[: len(big_jpeg) // 2], working_side=1600)


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


def _inspect(model: FaceModel, image: SanitizedImage) -> Inspection:
    return Inspection.of(image, find_subject(model, image.rgb))


@pytest.mark.parametrize("face_side", [1400, 560])
def test_faces_and_framing_are_in_source_pixels_whatever_the_decode(
    model: FaceModel, face_side: int
) -> None:
    """The face (in source pixels) and the framed picture match those of the whole photo; a
    small face's crop is decoded again finer instead of being blown up from the small copy."""
    data = jpeg(big_photo(face_side=face_side))
    whole = load_image(data)
    half = load_image(data, working_side=1600)
    seen_whole, seen_half = _inspect(model, whole), _inspect(model, half)
    assert seen_whole.face is not None and seen_half.face is not None
    a, b = seen_whole.face, seen_half.face
    assert abs(a.x - b.x) <= 6 and abs(a.y - b.y) <= 6 and abs(a.w - b.w) <= 0.05 * a.w
    assert seen_half.subject_json()["faces"][0] == b.to_json()

    asked: list[float] = []

    def finer(wanted: float) -> tuple[np.ndarray, int]:
        asked.append(wanted)
        return half.finer(wanted)

    framed_whole = frame_subject(whole.rgb, a, crop="auto", size=512)
    framed_half = frame_subject(
        half.rgb, a, crop="auto", size=512, reduction=half.reduction, finer=finer
    )
    assert framed_half.crop == framed_whole.crop
    assert framed_half.image.shape == framed_whole.image.shape
    assert framed_half.face == framed_whole.face
    difference = np.abs(framed_half.image.astype(int) - framed_whole.image.astype(int)).mean()
    assert difference < 2.5
    crop_long = max(
        framed_whole.crop[2] - framed_whole.crop[0], framed_whole.crop[3] - framed_whole.crop[1]
    )
    assert bool(asked) == (crop_long / 2 < 512) == (face_side < 1000)


def test_animate_reports_faces_in_source_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(jpeg(big_photo()))
    code = main(
        [
            "animate",
            str(photo),
            "gentle breathing",
            "--consent",
            "--variations",
            "1",
            "--seconds",
            "1",
            "--fps",
            "8",
            "--size",
            "256",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    expected = find_subject(FaceModel(), load_image(photo.read_bytes()).rgb).face
    assert expected is not None
    x, y, w, _ = result["subject"]["faces"][0]
    assert abs(x - expected.x) <= 6 and abs(y - expected.y) <= 6
    assert abs(w - expected.w) <= 0.05 * expected.w


def test_a_photo_under_twice_the_working_side_is_decoded_whole() -> None:
    data = images.astronaut_bytes()
    assert load_image(data, working_side=WORKING_SIDE).reduction == 1
