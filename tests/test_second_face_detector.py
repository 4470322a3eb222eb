"""The second face detector (BlazeFace): a person HOG misses is still a person (consent asked),
animated without a blink; it finds no face where there is none, and its absence is harmless."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import images
import numpy as np
import pytest
import scan_damage
from skimage import data as skdata
from test_animate_cli import animate, assert_one_line_error

from generation import blazeface
from generation.animator import AnimateOptions, Animator
from generation.backends import make_backend
from generation.faces import FaceModel
from generation.subject import Subject, find_subject
from moderation.intake import load_image


def _photo(name: str) -> np.ndarray:
    bgr = cv2.imread(str(images.EXAMPLES / name))
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


ASTRONAUT = _photo("astronaut.jpg")
# The same portrait stretched and squashed: dlib's HOG finds no face in either.
DISTORTED = {
    "stretched": cv2.resize(ASTRONAUT, (1280, 512), interpolation=cv2.INTER_CUBIC),
    "squashed": cv2.resize(ASTRONAUT, (512, 1400), interpolation=cv2.INTER_CUBIC),
}


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


@pytest.mark.parametrize("name", sorted(DISTORTED))
def test_a_face_hog_misses_is_found_by_the_second_detector(model: FaceModel, name: str) -> None:
    picture = DISTORTED[name]
    height, width = picture.shape[:2]
    subject = find_subject(model, picture)
    assert subject.kind == "face" and len(subject.faces) == 1
    face = subject.faces[0]
    assert face.detector == "blazeface" and not face.frontal and 0.6 <= face.score <= 1.0
    assert len(face.landmarks) == 5
    # The face of the portrait (x 175-266, y 76-167 of 512 x 512), scaled like the picture:
    # the box overlaps it.
    sx, sy = width / 512, height / 512
    assert face.x < 266 * sx and face.x + face.w > 175 * sx
    assert face.y < 167 * sy and face.y + face.h > 76 * sy
    assert any("second face detector" in w and "no blink" in w for w in subject.warnings)
    assert Subject.from_record(json.loads(json.dumps(subject.to_record()))) == subject


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_sideways_or_upside_down_face_is_found_where_it_is(model: FaceModel, turns: int) -> None:
    picture = np.ascontiguousarray(np.rot90(_photo("grace_hopper.jpg"), turns))
    subject = find_subject(model, picture)
    assert subject.kind == "face"
    # Where the upright face (HOG's box) lands in the turned picture: the box overlaps it.
    upright = find_subject(model, _photo("grace_hopper.jpg")).faces[0]
    height, width = _photo("grace_hopper.jpg").shape[:2]
    corners = np.array(
        [[upright.x, upright.y], [upright.x + upright.w, upright.y + upright.h]], dtype=float
    )
    for _ in range(turns):  # np.rot90 turns anticlockwise: (x, y) -> (y, W - x)
        corners = np.stack([corners[:, 1], width - corners[:, 0]], axis=1)
        width, height = height, width
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    assert any(f.x < x1 and f.x + f.w > x0 and f.y < y1 and f.y + f.h > y0 for f in subject.faces)


def test_unturning_maps_a_box_back_to_the_photo() -> None:
    photo = np.zeros((5, 8), dtype=np.uint8)
    photo[1, 6] = 1  # the pixel (x 6, y 1)
    for turns in range(4):
        y, x = np.argwhere(np.rot90(photo, turns) == 1)[0]
        box = np.array([x, y, x + 1, y + 1], dtype=np.float32)
        assert blazeface._unturn(box, turns, 8, 5).tolist() == [6.0, 1.0, 7.0, 2.0]


def test_the_cameraman_in_profile_is_a_person(model: FaceModel) -> None:
    # scikit-image's "camera": a man looking into a camera, his face in profile; HOG misses it.
    picture = np.ascontiguousarray(np.dstack([skdata.camera()] * 3))
    assert model.find_faces(picture) and model.find_faces(picture)[0].detector == "blazeface"
    face = find_subject(model, picture).faces[0]
    assert 200 <= face.x + face.w / 2 <= 280 and 120 <= face.y + face.h / 2 <= 200


def test_hog_faces_are_kept_and_nothing_is_found_where_there_is_no_face(
    model: FaceModel,
) -> None:
    portrait = find_subject(model, ASTRONAUT)
    assert [f.detector for f in portrait.faces] == ["hog"] and portrait.faces[0].frontal
    gradient = np.dstack([np.tile(np.linspace(0, 255, 512), (512, 1))] * 3).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    things = [
        skdata.coffee(),
        skdata.rocket(),
        skdata.coins(),
        skdata.brick(),
        skdata.moon(),
        skdata.hubble_deep_field(),
        skdata.horse().astype(np.uint8) * 255,
    ]
    for picture in (_photo("chelsea.jpg"), gradient, noise, *things):
        rgb = picture if picture.ndim == 3 else np.dstack([picture] * 3)
        assert find_subject(model, np.ascontiguousarray(rgb)).kind != "face"


def test_without_the_second_detector_a_missed_face_stays_missed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(blazeface, "model_path", lambda name: None)
    with caplog.at_level(logging.WARNING):
        subject = find_subject(FaceModel(), DISTORTED["stretched"])
    assert subject.kind == "none"
    assert any("second face detector is unavailable" in r.message for r in caplog.records)


def test_a_person_only_the_second_detector_finds_needs_consent(tmp_path: Path) -> None:
    photo = tmp_path / "stretched.jpg"
    cv2.imwrite(str(photo), cv2.cvtColor(DISTORTED["stretched"], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    line = assert_one_line_error(
        animate(photo, "subtle blink", "--variations", "1", "--seconds", "1", "--out", out),
        code=3,
    )
    assert "--consent" in line


def test_such_a_face_is_animated_without_a_blink_or_a_likeness_score(tmp_path: Path) -> None:
    # dlib's landmarks in another detector's box align its chips poorly: compared, the
    # cameraman's takes scored 0.75-0.80 and were flagged though he does not change.
    photo = tmp_path / "camera.png"
    cv2.imwrite(str(photo), skdata.camera())
    done = animate(
        photo, "subtle blink, slight head tilt", "--consent", "--json", "--variations", "2",
        "--seconds", "1", "--size", "256", "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["subject"]["kind"] == "face"
    assert any("no blink and no likeness score" in w for w in result["warnings"])
    assert not any("changes the face" in w for w in result["warnings"])
    for variation in result["variations"]:
        assert variation["scores"]["identity"] == 1.0 and not variation["flagged"]


def test_such_a_face_asked_only_to_blink_breathes_instead_of_standing_still(
    tmp_path: Path,
) -> None:
    # Its eyes cannot be placed for a blink: three identical still clips would be no living
    # photo, so it breathes gently, and a warning says why.
    photo = tmp_path / "camera.png"
    cv2.imwrite(str(photo), skdata.camera())
    done = animate(
        photo, "blink", "--consent", "--json", "--variations", "2", "--seconds", "1",
        "--size", "256", "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert any("breathes gently instead" in w for w in result["warnings"])
    for variation in result["variations"]:
        assert variation["info"]["components"] == ["breathing"]
        assert variation["scores"]["motion"] > 0.05


def test_a_big_photo_is_searched_on_a_copy_and_its_boxes_come_back_in_its_pixels(
    model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = model._second_detector()
    assert detector is not None
    small = DISTORTED["stretched"]  # 1280 x 512: searched as it is
    (expected,) = detector.detect(small)
    big = cv2.resize(small, (3 * 1280, 3 * 512), interpolation=cv2.INTER_CUBIC)
    seen: list[tuple[int, ...]] = []
    original = blazeface.BlazeFace._detect_view

    def spy(self: blazeface.BlazeFace, rgb: np.ndarray, least: float = 0.6) -> list:
        seen.append(rgb.shape)
        return original(self, rgb, least)

    monkeypatch.setattr(blazeface.BlazeFace, "_detect_view", spy)
    (found,) = detector.detect(big)
    # Eight views (four turns, four tiles), cut from a copy halved twice (3840 -> 1920 -> 960:
    # one more halving would take it under the working size).
    assert len(seen) == 8 and max(max(shape[:2]) for shape in seen) == 960
    # The same face, in the big photo's pixels: three times the small photo's box, give or take
    # what the network's view of a slightly different copy moves it (a few small-photo pixels).
    for got, want in ((found.x, expected.x), (found.y, expected.y)):
        assert abs(got - 3 * want) <= 3 * 6
    for got, want in ((found.w, expected.w), (found.h, expected.h)):
        assert abs(got - 3 * want) <= 3 * 8
    assert abs(found.score - expected.score) < 0.1


def _damaged_astronaut(seed: int) -> np.ndarray:
    """The astronaut as an old scan (tests/scan_damage.py): toned, grainy, scratched."""
    rng = np.random.default_rng(seed)
    aged = scan_damage.age(load_image(images.astronaut_bytes()).rgb, rng)
    return scan_damage.damage(aged, rng, scan_damage.DamageSpec.random(rng))


def test_a_face_found_by_the_second_detector_is_found_again_in_the_framed_scan(
    model: FaceModel, tmp_path: Path
) -> None:
    # On this damaged scan HOG misses the face in the whole photo and the second detector finds
    # it; cropped around the face and cleaned, HOG finds it again: it then blinks and gets a
    # likeness score like any face HOG found.
    scan = _damaged_astronaut(2)
    kind, faces = model.find_heads(scan)
    assert kind == "face" and faces[0].detector == "blazeface"  # what this test is about
    ok, png = cv2.imencode(".png", cv2.cvtColor(scan, cv2.COLOR_RGB2BGR))
    assert ok
    options = AnimateOptions(variations=2, seconds=1.0, fps=8, size=512, seed=1)
    result = Animator(make_backend("warp")).animate(
        png.tobytes(), "subtle blink", options, tmp_path / "out"
    )
    assert result.restoration["restored"]
    assert not any("second face detector" in w for w in result.warnings), result.warnings
    assert all(v.info["blink_peak"] is not None for v in result.variations)
    # The face reported is HOG's, in the photo's pixels, over the second detector's.
    x, y, w, h = result.subject["faces"][0]
    second = faces[0]
    assert abs((x + w / 2) - (second.x + second.w / 2)) < second.w / 2
    assert abs((y + h / 2) - (second.y + second.h / 2)) < second.h / 2


def test_a_face_hog_found_in_the_photo_is_not_searched_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def unexpected(self: FaceModel, rgb: np.ndarray) -> list[object]:
        raise AssertionError("searched again")

    monkeypatch.setattr(FaceModel, "find_faces_hog", unexpected)
    options = AnimateOptions(variations=1, seconds=1.0, fps=8, size=256, seed=1)
    result = Animator(make_backend("warp")).animate(
        images.astronaut_bytes(), "subtle blink", options, tmp_path / "out"
    )
    assert result.variations[0].info["blink_peak"] is not None
