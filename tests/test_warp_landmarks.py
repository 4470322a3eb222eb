"""The warp backend follows the face model's landmarks, and animals get pet motion."""

from __future__ import annotations

import dataclasses
import math

import images
import numpy as np
import pytest

from generation.backend import FaceBox
from generation.backends.warp import Plan, _Grid, plan_variation
from generation.faces import FaceModel, geometry
from generation.motion import parse_motion
from generation.preprocess import frame_subject
from moderation.intake import load_image

FIELD_STEP = 2


@pytest.fixture(scope="module")
def face() -> tuple[FaceBox, _Grid]:
    rgb = load_image(images.astronaut_bytes()).rgb
    model = FaceModel()
    (found,) = model.find_faces(rgb)
    framed = frame_subject(rgb, found, crop="auto", size=384)
    assert framed.face is not None
    height, width = framed.image.shape[:2]
    return model.landmarks(framed.image, framed.face), _Grid(width, height)


def plan(prompt: str, face: FaceBox | None, grid: _Grid, kind: str = "face") -> Plan:
    return plan_variation(
        parse_motion(prompt),
        face,
        grid,
        48,
        24,
        np.random.default_rng(3),
        kind=kind,  # type: ignore[arg-type]
    )


def test_the_blink_follows_each_eyes_corners(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    eyes = plan("blink", box, grid).eyes
    corners = sorted(box.landmarks[:4], key=lambda p: p[0])
    for eye, (outer, inner) in zip(
        eyes, ((corners[0], corners[1]), (corners[2], corners[3])), strict=True
    ):
        width = math.hypot(inner[0] - outer[0], inner[1] - outer[1])
        assert min(outer[0], inner[0]) < eye.centre[0] < max(outer[0], inner[0])
        assert eye.half_width == pytest.approx(0.62 * width)
        assert eye.angle == pytest.approx(math.atan2(inner[1] - outer[1], inner[0] - outer[0]))


def test_keep_mouth_closed_moves_the_lips_as_one_piece(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    geo = geometry(box)
    mx = (geo.mouth_left[0] + geo.mouth_right[0]) / 2
    my = (geo.mouth_left[1] + geo.mouth_right[1]) / 2
    r = max(1, round(0.12 * geo.eye_distance / FIELD_STEP))
    i, j = round(my / FIELD_STEP), round(mx / FIELD_STEP)

    def spread(p: Plan) -> float:
        return max(float(np.ptp(c.dy[i - r : i + r + 1, j - r : j + r + 1])) for c in p.components)

    free = plan("strong nod, head tilt", box, grid)
    closed = plan("strong nod, head tilt, keep mouth closed", box, grid)
    assert closed.notes.get("protected") == "lips"
    assert spread(closed) < 0.2 * spread(free)


def test_animals_breathe_and_bob_but_never_blink(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    pet = plan("blink, smile", box, grid, kind="animal")
    assert pet.eyes == [] and not pet.closure.any()
    components = pet.notes["components"]
    assert isinstance(components, list)
    assert {"breathing", "nod"} <= set(components) and "smile" not in components


def test_a_profile_face_gets_no_blink(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    side = dataclasses.replace(box, frontal=False)
    assert plan("blink, head tilt", side, grid).eyes == []
    assert plan("blink, head tilt", box, grid).eyes != []


def test_without_a_face_motion_centres_on_the_focus(face: tuple[FaceBox, _Grid]) -> None:
    _, grid = face
    focused = plan_variation(
        parse_motion("gentle breathing"),
        None,
        grid,
        24,
        12,
        np.random.default_rng(1),
        kind="none",
        focus=(40.0, 50.0),
    )
    zoom = next(c for c in focused.components if c.name == "zoom")
    # The zoom's fixed point (zero displacement) is the focus.
    i, j = round(50 / FIELD_STEP), round(40 / FIELD_STEP)
    assert abs(float(zoom.dx[i, j])) < 1.5 and abs(float(zoom.dy[i, j])) < 1.5
