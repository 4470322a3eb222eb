"""What a photo shows: human faces (never animals), several faces, and the fallbacks."""

from __future__ import annotations

import pickle
from typing import Any

import images
import numpy as np
import pytest
from PIL import Image

from generation.backend import FaceBox
from generation.faces import MIN_FACE_PX, FaceModel
from generation.subject import choose, find_subject, salient_centre
from livingphoto.errors import UsageError


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel()


def rgb(name: str) -> np.ndarray:  # type: ignore[type-arg]
    return np.asarray(Image.open(images.EXAMPLES / name).convert("RGB"))


def test_portraits_are_faces(model: FaceModel) -> None:
    for name in ("astronaut.jpg", "grace_hopper.jpg"):
        subject = find_subject(model, rgb(name))
        assert subject.kind == "face" and subject.chosen == 0 and len(subject.faces) == 1, name
        face = subject.faces[0]
        assert face.frontal and len(face.landmarks) == 5


def test_animals_and_things_are_never_a_human_face(model: FaceModel) -> None:
    # chelsea.jpg: a cat close-up (CC0); the rest are pictures without people.
    cat = rgb("chelsea.jpg")
    pictures = [cat, np.ascontiguousarray(cat[:, ::-1]), np.asarray(images.portrait_rgb())]
    for picture in pictures:
        subject = find_subject(model, picture)
        assert subject.kind != "face"
        assert model.find_faces(picture) == []


def test_several_faces_left_to_right_and_the_choice(model: FaceModel) -> None:
    single = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB")
    group = Image.new("RGB", (1024, 600), (128, 128, 128))
    group.paste(single, (0, 0))
    group.paste(single.resize((400, 400)), (560, 150))
    subject = find_subject(model, np.asarray(group))
    assert subject.kind == "face" and len(subject.faces) == 2
    assert subject.faces[0].x < subject.faces[1].x
    assert subject.chosen == 0  # the larger face is on the left
    assert any("2 faces found" in w for w in subject.warnings)
    assert find_subject(model, np.asarray(group), face=1).chosen == 1
    with pytest.raises(UsageError, match="out of range"):
        find_subject(model, np.asarray(group), face=2)
    assert subject.to_json()["faces"][1] == subject.faces[1].to_json()


def test_small_faces_are_reported_but_not_animated(model: FaceModel) -> None:
    small = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB").resize((200, 200))
    canvas = Image.new("RGB", (640, 640), (120, 130, 140))
    canvas.paste(small, (220, 220))
    subject = find_subject(model, np.asarray(canvas))
    if subject.kind == "face":  # found or not, nothing is made up
        assert subject.face is not None and subject.face.w < MIN_FACE_PX
        assert subject.animatable is None
        assert any("px wide" in w for w in subject.warnings)
    else:
        assert subject.faces == () and subject.chosen is None


def test_no_face_means_no_choice() -> None:
    from generation.subject import Subject

    empty = choose(Subject("none", (), None), None)
    assert empty.chosen is None and empty.to_json() == {"kind": "none", "faces": [], "chosen": None}
    with pytest.raises(UsageError, match="no face was found"):
        choose(empty, 0)


def test_salient_centre_follows_the_subject() -> None:
    picture = np.full((200, 300, 3), 90, dtype=np.uint8)
    picture[120:180, 220:290] = (250, 240, 30)
    x, y = salient_centre(picture)
    assert x > 150 and y > 100


def test_profile_views_and_animals_get_a_clear_warning() -> None:
    from generation.backend import FaceBox
    from generation.subject import Subject

    side = FaceBox(100, 100, 120, 120, frontal=False)
    profile = choose(Subject("face", (side,), None), None)
    assert profile.chosen == 0 and profile.animatable == side
    assert any("profile" in w for w in profile.warnings)
    cat = choose(Subject("animal", (FaceBox(10, 10, 90, 90),), None), None)
    assert cat.kind == "animal" and any("no human blink" in w for w in cat.warnings)


def test_a_small_face_in_a_big_photo_is_found(model: FaceModel) -> None:
    person = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB").resize((700, 700))
    big = Image.new("RGB", (2400, 1600), (120, 125, 130))
    big.paste(person, (1500, 800))
    (face,) = model.find_faces(np.asarray(big))
    # The face is ~6 % of the long side: found by the second, finer pass, in source pixels.
    assert 1700 < face.x + face.w / 2 < 1900 and 900 < face.y + face.h / 2 < 1100


def test_the_finer_pass_finds_a_small_face_in_a_phone_photo_in_grey(
    model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skimage import data as skdata

    # A 12 MP photo of a coffee cup with a person whose face is 3.5 % of the long side (141 px).
    person = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB").resize((793, 793))
    photo = Image.fromarray(skdata.coffee()).resize((4032, 3024))  # type: ignore[no-untyped-call]
    photo.paste(person, (2600, 1100))
    searched: list[tuple[int, ...]] = []
    detector = model._detector

    class Spy:
        def __init__(self, name: str, real: Any) -> None:
            self.name, self.real = name, real

        def run(self, image: np.ndarray, *args: object) -> object:  # type: ignore[type-arg]
            searched.append((self.name, *image.shape))
            return self.real.run(image, *args)

    # A dlib detector runs one search at a time: the strips each have their own.
    monkeypatch.setattr(model, "_detector", Spy("detector", detector))
    monkeypatch.setattr(model, "_spare", Spy("copy", pickle.loads(pickle.dumps(detector))))
    (face,) = model.find_faces(np.asarray(photo))
    assert face.detector == "hog" and face.frontal and face.score >= 0.6
    # The astronaut's face (x 175-266, y 76-167 of 512) where it was pasted.
    scale = 793 / 512
    assert abs(face.x + face.w / 2 - (2600 + 220 * scale)) < 0.3 * face.w
    assert abs(face.y + face.h / 2 - (1100 + 121 * scale)) < 0.3 * face.h
    # The first pass in colour at 640 px found nothing; the second, at 1280 px, in grey, as two
    # strips of 800 px (overlapping by 320 px) side by side, each on its own detector.
    assert searched[0] == ("detector", 480, 640, 3)
    assert sorted(searched[1:]) == [("copy", 960, 800), ("detector", 960, 800)]


def restyled(picture: np.ndarray) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    """The portrait as an old scratched sepia print, a painting and a cartoon."""
    import cv2

    rng = np.random.default_rng(0)
    grey = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY).astype(np.float32)
    faded = 0.6 * grey + 50 + rng.normal(0, 12, grey.shape)
    old = np.clip(np.stack([faded * 1.07, faded * 0.95, faded * 0.78], -1), 0, 255)
    old = np.ascontiguousarray(old.astype(np.uint8))
    for _ in range(6):
        x = int(rng.uniform(0, picture.shape[1]))
        cv2.line(old, (x, 0), (x + int(rng.uniform(-30, 30)), picture.shape[0]), (235, 225, 200), 1)
    edges = cv2.adaptiveThreshold(
        cv2.medianBlur(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY), 5),
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY,
        9,
        5,
    )
    flat = cv2.edgePreservingFilter(picture, flags=1, sigma_s=60, sigma_r=0.4)
    return {
        "old photo": old,
        "painting": np.asarray(cv2.stylization(picture, sigma_s=60, sigma_r=0.45)),
        "cartoon": np.asarray(cv2.bitwise_and(flat, cv2.cvtColor(edges, cv2.COLOR_GRAY2RGB))),
    }


def test_old_photos_paintings_and_cartoons_of_people_are_faces(model: FaceModel) -> None:
    for name in ("astronaut.jpg", "grace_hopper.jpg"):
        for style, picture in restyled(rgb(name)).items():
            assert find_subject(model, picture).kind == "face", (name, style)


def _one_after_another(model: FaceModel, rgb: np.ndarray) -> tuple[str, list]:  # type: ignore[type-arg]
    """The search order ``find_heads`` keeps, each step waiting for the one before."""
    faces = model._find_faces_at(rgb, 640)
    if not faces and max(rgb.shape[:2]) > 960:
        faces = model._find_faces_at(rgb, 1280, grey=True)
    if not faces:
        faces = model._find_faces_second(rgb)
    if faces:
        return "face", faces
    cats = model.find_cats(rgb)
    return ("animal", cats) if cats else ("none", [])


def test_after_a_miss_the_searches_run_side_by_side_and_find_what_they_found_in_turn(
    model: FaceModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import cv2

    portrait = np.asarray(Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB"))
    cat = np.asarray(Image.open(images.EXAMPLES / "chelsea.jpg").convert("RGB"))
    pictures = {
        "portrait": portrait,
        "stretched portrait": cv2.resize(portrait, (1280, 512), interpolation=cv2.INTER_CUBIC),
        "big cat": cv2.resize(cat, (1500, 998), interpolation=cv2.INTER_CUBIC),
        "noise": np.random.default_rng(0).integers(0, 256, (700, 1100, 3), dtype=np.uint8),
    }
    kinds = {}
    for name, rgb in pictures.items():
        kind, found = model.find_heads(rgb)
        assert (kind, found) == _one_after_another(model, rgb), name
        kinds[name] = kind
    # (OpenCV's cat cascade misses this cat: whole-picture motion.)
    assert kinds == {
        "portrait": "face",
        "stretched portrait": "face",
        "big cat": "none",
        "noise": "none",
    }
    # While the finer HOG pass searches the big cat photo, the second detector and the cat
    # search have started too (each releases the GIL: the wall time is the longest one's), and
    # what the cat search finds is the answer when no human face is found.
    started = {"second": threading.Event(), "cats": threading.Event()}
    finer_saw: dict[str, bool] = {}
    real_at, real_second, real_cats = (
        FaceModel._find_faces_at,
        FaceModel._find_faces_second,
        FaceModel.find_cats,
    )

    def at(
        self: FaceModel, rgb: np.ndarray, long_side: int, grey: bool = False, pool: Any = None
    ) -> list:  # type: ignore[type-arg]
        if grey:
            finer_saw.update({k: e.wait(timeout=30) for k, e in started.items()})
        return real_at(self, rgb, long_side, grey, pool)

    def second(self: FaceModel, rgb: np.ndarray) -> list:  # type: ignore[type-arg]
        started["second"].set()
        return real_second(self, rgb)

    def cats(self: FaceModel, rgb: np.ndarray) -> list:  # type: ignore[type-arg]
        started["cats"].set()
        return [*real_cats(self, rgb), FaceBox(700, 300, 200, 200, detector="cat-cascade")]

    monkeypatch.setattr(FaceModel, "_find_faces_at", at)
    monkeypatch.setattr(FaceModel, "_find_faces_second", second)
    monkeypatch.setattr(FaceModel, "find_cats", cats)
    kind, found = model.find_heads(pictures["big cat"])
    assert (kind, [f.detector for f in found]) == ("animal", ["cat-cascade"])
    assert finer_saw == {"second": True, "cats": True}


@pytest.mark.parametrize("size", [(2000, 1500), (1500, 2000)])
def test_the_finer_pass_searches_two_strips_side_by_side_and_finds_each_face_once(
    model: FaceModel, size: tuple[int, int]
) -> None:
    """A small face before, inside and after the strips' overlap (across the long side of a
    landscape and of a portrait photo) is found once, where one search of the whole finds it."""
    from concurrent.futures import ThreadPoolExecutor

    from skimage import data as skdata

    person = Image.open(images.EXAMPLES / "astronaut.jpg").convert("RGB").resize((300, 300))
    backdrop = Image.fromarray(skdata.coffee()).resize(size)  # type: ignore[no-untyped-call]
    long = max(size)
    for where in (0.2, 0.5, 0.8):  # the overlap spans 0.375-0.625 of the long side
        photo = backdrop.copy()
        along = round(where * long) - 150
        photo.paste(person, (along, 200) if size[0] > size[1] else (200, along))
        rgb = np.asarray(photo)
        whole = model._find_faces_at(rgb, 1280, grey=True)
        with ThreadPoolExecutor(max_workers=1) as pool:
            strips = model._find_faces_at(rgb, 1280, grey=True, pool=pool)
        assert len(whole) == len(strips) == 1, where
        (a,), (b,) = whole, strips
        assert abs(a.x - b.x) < 0.2 * a.w and abs(a.y - b.y) < 0.2 * a.w, where
        assert b.score > 0.5


def test_boxes_of_the_two_strips_are_one_face_when_they_overlap_or_nest() -> None:
    from generation.faces import _same_face

    assert _same_face((0, 0, 100, 100), (10, 5, 110, 105))  # shifted a little
    assert _same_face((0, 0, 140, 140), (20, 15, 118, 113))  # found at two scales
    assert not _same_face((0, 0, 100, 100), (80, 0, 180, 100))  # neighbours in a group
    assert not _same_face((0, 0, 100, 100), (200, 200, 300, 300))
