"""The Animator in-process: framing, faces, contact sheet, formats, options, cancel, timings."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import images
import numpy as np
import pytest
from PIL import Image

from generation.animate_cli import ProgressBar
from generation.animator import AnimateOptions, Animator
from generation.backend import CancelToken, FaceBox, ProgressFn, RenderRequest, Take
from generation.backends import make_backend
from generation.backends.warp import WarpBackend
from generation.contact_sheet import pick_frames
from generation.export import probe, read_frames
from generation.faces import FaceModel, geometry
from generation.preprocess import crop_box, even_size, frame_subject
from livingphoto.errors import Cancelled, GenerationFailed, UsageError

TINY = AnimateOptions(variations=2, seconds=1.0, fps=8, size=160, seed=5)


@pytest.fixture(scope="module")
def animator() -> Animator:
    made = Animator(make_backend("warp"))
    made.setup()
    return made


def test_face_and_eyes_on_the_example_portrait() -> None:
    rgb = np.asarray(Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB"))
    (face,) = FaceModel().find_faces(rgb)
    assert 150 < face.x + face.w / 2 < 300 and 50 < face.y + face.h / 2 < 170
    assert face.left_eye is not None and face.right_eye is not None
    assert face.left_eye[0] < face.right_eye[0]
    geo = geometry(face)
    assert 0.3 * face.w < geo.eye_distance < 0.6 * face.w
    assert geo.left_eye[1] < geo.nose[1] < geo.mouth_left[1]


def test_no_face_on_a_cat_or_a_pattern() -> None:
    cat = np.asarray(Image.open(images.EXAMPLES / "chelsea.jpg").convert("RGB"))
    model = FaceModel()
    assert model.find_faces(cat) == []
    assert model.find_faces(np.asarray(images.portrait_rgb())) == []


def test_a_box_without_landmarks_gets_estimated_eyes() -> None:
    geo = geometry(FaceBox(50, 40, 100, 100))
    assert geo.left_eye == pytest.approx((80.0, 79.0))
    assert geo.right_eye == pytest.approx((120.0, 79.0))


def test_crop_frames_head_and_shoulders() -> None:
    face = FaceBox(x=400, y=300, w=100, h=100)
    x0, y0, x1, y1 = crop_box(2000, 1500, face, size=256)
    assert x0 < 400 and x1 > 500 and y0 < 300 and y1 > 400 + 100  # room for shoulders
    assert (y1 - y0) / (x1 - x0) == pytest.approx(1.25, abs=0.02)
    assert abs((x0 + x1) / 2 - 450) < 2  # centred on the face


def test_frame_subject_sizes_are_even_and_face_moves_along() -> None:
    rgb = np.zeros((601, 801, 3), dtype=np.uint8)
    kept = frame_subject(rgb, None, crop="auto", size=333)
    assert kept.image.shape[1] % 2 == 0 and kept.image.shape[0] % 2 == 0
    assert max(kept.image.shape[:2]) in (332, 334)
    face = FaceBox(x=300, y=200, w=120, h=120)
    framed = frame_subject(rgb, face, crop="auto", size=256)
    assert framed.face is not None
    assert max(framed.image.shape[:2]) == 256
    assert framed.face.w == pytest.approx(120 * framed.scale, abs=2)
    whole = frame_subject(rgb, face, crop="none", size=256)
    assert whole.crop == (0, 0, 801, 601)
    assert even_size(801, 601, 256) == (256, 192)


def test_pick_frames_includes_blink_and_skips_the_repeat() -> None:
    picks = pick_frames(72, 6, must=33)
    assert 33 in picks and 0 in picks and 71 not in picks and len(picks) == 6


def test_animate_writes_everything(animator: Animator, tmp_path: Path) -> None:
    data = images.astronaut_bytes()
    result = animator.animate(data, "subtle blink, slight head tilt", TINY, tmp_path)
    assert [v.index for v in result.variations] == [1, 2]
    assert [v.seed for v in result.variations] == [5, 6]
    assert sorted(v.rank for v in result.variations) == [1, 2]
    assert {p.name for p in tmp_path.iterdir()} == {
        "variation-1.mp4",
        "variation-2.mp4",
        "contact-sheet.png",
        "summary.json",
    }
    assert json.loads((tmp_path / "summary.json").read_text()) == result.to_json()
    assert set(result.timings) >= {"decode", "detect", "warp", "encode", "score", "total"}
    sheet = Image.open(tmp_path / "contact-sheet.png")
    assert sheet.format == "PNG" and sheet.height > 2 * 160
    assert result.motion["motions"][0]["primitive"] == "blink"


def test_inspect_and_reuse(animator: Animator, tmp_path: Path) -> None:
    inspection = animator.inspect(images.astronaut_bytes())
    assert inspection.shows_person
    assert not animator.inspect(images.jpeg_bytes()).shows_person
    result = animator.animate(
        b"", "blink", TINY, tmp_path, inspection=inspection
    )  # no second decode
    assert result.timings["decode"] == 0.0


@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_other_formats(animator: Animator, tmp_path: Path, fmt: str) -> None:
    options = AnimateOptions(variations=1, seconds=1.0, fps=8, size=128, seed=1, format=fmt)  # type: ignore[arg-type]
    result = animator.animate(images.jpeg_bytes(), "gentle breathing", options, tmp_path)
    assert result.variations[0].path.suffix == f".{fmt}"
    # 8 frames at 8 fps (the WebP encoder may store near-identical frames as one longer frame).
    assert read_frames(result.variations[0].path).shape[0] == 8


def test_motion_scale_and_warnings(animator: Animator, tmp_path: Path) -> None:
    options = AnimateOptions(variations=1, seconds=1.0, fps=8, size=128, seed=1, motion_scale=0.5)
    result = animator.animate(images.jpeg_bytes(), "blink", options, tmp_path)
    assert result.motion["motions"][0]["intensity"] == 0.25
    assert any("no face found" in w for w in result.warnings)


def test_bad_options_and_out_dir(animator: Animator, tmp_path: Path) -> None:
    data = images.jpeg_bytes()
    with pytest.raises(UsageError, match="variations"):
        animator.animate(data, "blink", AnimateOptions(variations=0), tmp_path)
    with pytest.raises(UsageError, match="seconds"):
        animator.animate(data, "blink", AnimateOptions(seconds=9), tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="output folder"):
        animator.animate(data, "blink", TINY, blocker)
    with pytest.raises(UsageError, match="empty"):
        animator.animate(data, " ", TINY, tmp_path / "out")


def test_cancel_before_render(animator: Animator, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        animator.animate(images.jpeg_bytes(), "blink", TINY, tmp_path, cancel=token)
    assert not list(tmp_path.glob("variation-*"))


def test_progress_bar_draws_on_a_terminal_only() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, enabled=True)
    for fraction in (0.0, 0.5, 0.5, 1.0):
        bar(fraction, "warp")
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 3 and "100%" in text and text.endswith("\n")
    quiet = io.StringIO()
    ProgressBar(quiet, enabled=False)(0.5, "warp")
    assert quiet.getvalue() == ""


def test_several_faces_warn(animator: Animator, tmp_path: Path) -> None:
    single = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB")
    group = Image.new("RGB", (1024, 512), (128, 128, 128))
    group.paste(single, (0, 0))
    group.paste(single, (512, 0))
    data = images.encode(group, "JPEG", quality=90)
    inspection = animator.inspect(data)
    assert inspection.kind == "face" and len(inspection.faces) == 2
    # Left to right, in source pixels; the two copies are the same size.
    assert inspection.faces[0].x < 512 <= inspection.faces[1].x
    assert animator.inspect(data, face=1).chosen == 1
    result = animator.animate(data, "blink", TINY, tmp_path)
    assert any("2 faces found" in w for w in result.warnings)


class ResizingBackend:
    """A backend whose frames come out at another size (as a diffusion model's may)."""

    name = "resizing"

    def __init__(self, fail: bool = False) -> None:
        self.inner = WarpBackend()
        self.fail = fail

    def setup(self) -> None:
        self.inner.setup()

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        if self.fail:
            raise RuntimeError("model exploded")
        takes = self.inner.render(request, progress, cancel)
        for take in takes:
            take.frames = np.stack([cv2.resize(f, (96, 128)) for f in take.frames])
        return takes


def test_scores_follow_a_backend_that_resizes(tmp_path: Path) -> None:
    animator = Animator(ResizingBackend())
    animator.setup()
    result = animator.animate(images.astronaut_bytes(), "blink", TINY, tmp_path)
    assert probe(result.variations[0].path).width == 96
    assert all(v.scores.identity > 0.8 for v in result.variations)


def test_backend_crash_is_generation_failed(tmp_path: Path) -> None:
    animator = Animator(ResizingBackend(fail=True))
    animator.setup()
    with pytest.raises(GenerationFailed, match="model exploded"):
        animator.animate(images.jpeg_bytes(), "blink", TINY, tmp_path)


@pytest.mark.parametrize("angle", [-25, 25])
def test_tilted_heads_are_found_with_a_tilted_eye_line(angle: int) -> None:
    source = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB")
    tilted = np.asarray(
        source.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    )
    (face,) = FaceModel().find_faces(tilted)
    assert face.left_eye is not None and face.right_eye is not None
    eye_line = np.degrees(
        np.arctan2(face.right_eye[1] - face.left_eye[1], face.right_eye[0] - face.left_eye[0])
    )
    # PIL turns counter-clockwise; the upright photo's eye line is ~3 degrees.
    assert abs(eye_line - (3 - angle)) < 8
