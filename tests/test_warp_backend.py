"""The CPU warp backend: exact loops, a real blink, face-aware motion, constraints, fallback."""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import images
import numpy as np
import pytest
from numpy.typing import NDArray

from generation.backend import CancelToken, FaceBox, RenderRequest, Take, no_progress
from generation.backends import make_backend
from generation.backends.warp import WarpBackend, blink_curve, loop_phase
from generation.faces import FaceModel
from generation.motion import parse_motion
from generation.preprocess import frame_subject
from livingphoto.errors import Cancelled
from moderation.intake import load_image


@dataclass(frozen=True)
class Portrait:
    image: NDArray[np.uint8]
    face: FaceBox


@pytest.fixture(scope="module")
def portrait() -> Portrait:
    rgb = load_image(images.astronaut_bytes()).rgb
    model = FaceModel()
    (face,) = model.find_faces(rgb)
    framed = frame_subject(rgb, face, crop="auto", size=256)
    assert framed.face is not None
    return Portrait(framed.image, model.landmarks(framed.image, framed.face))


def render(
    portrait: Portrait | None,
    prompt: str,
    *,
    frames: int = 24,
    fps: int = 24,
    variations: int = 1,
    seed: int = 3,
    image: NDArray[np.uint8] | None = None,
) -> list[Take]:
    request = RenderRequest(
        image=portrait.image if portrait else image,  # type: ignore[arg-type]
        spec=parse_motion(prompt),
        variations=variations,
        frames=frames,
        fps=fps,
        seed=seed,
        face=portrait.face if portrait else None,
    )
    return WarpBackend().render(request, no_progress, CancelToken())


def eye_patch(
    frame: NDArray[np.uint8], face: FaceBox, eye: tuple[float, float]
) -> NDArray[np.uint8]:
    half = max(4, int(0.12 * face.w))
    x, y = int(eye[0]), int(eye[1])
    patch = frame[y - half // 2 : y + half // 2 + 1, x - half : x + half + 1]
    return cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY).astype(np.float32)


def test_registry_builds_warp() -> None:
    assert make_backend("warp").name == "warp"


def test_loop_closes_exactly_and_slowly(portrait: Portrait) -> None:
    (take,) = render(portrait, "subtle blink, slight head tilt, gentle breathing", frames=36)
    frames = take.frames.astype(np.int16)
    assert take.frames.shape == (36, *portrait.image.shape)
    assert np.array_equal(frames[-1], frames[0])
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    # The eased clock: the steps into and out of the loop point are gentler than typical.
    assert steps[0] < np.median(steps) and steps[-1] < np.median(steps)
    assert steps.max() > 0.05  # and it does move


def test_blink_closes_the_eyes(portrait: Portrait) -> None:
    (take,) = render(portrait, "blink", frames=24, seed=5)
    peak = take.info["blink_peak"]
    assert isinstance(peak, int) and 0 < peak < 23
    assert portrait.face.left_eye and portrait.face.right_eye
    for eye in (portrait.face.left_eye, portrait.face.right_eye):
        open_patch = eye_patch(take.frames[0], portrait.face, eye)
        shut_patch = eye_patch(take.frames[peak], portrait.face, eye)
        # The dark iris/pupil is covered by lid skin: the darkest pixels get much lighter,
        # and the eye region visibly changes.
        assert np.percentile(shut_patch, 10) > np.percentile(open_patch, 10) + 15
        assert np.abs(shut_patch - open_patch).mean() > 8
    # Away from the blink the eyes are open again.
    late = eye_patch(take.frames[-2], portrait.face, portrait.face.left_eye)
    first = eye_patch(take.frames[0], portrait.face, portrait.face.left_eye)
    assert np.abs(late - first).mean() < 3


def test_background_stays_still_for_face_motions(portrait: Portrait) -> None:
    (take,) = render(portrait, "slight head tilt, gentle breathing", frames=24)
    diff = np.abs(take.frames.astype(np.int16) - take.frames[0].astype(np.int16)).max(axis=0)
    face = portrait.face
    head = diff[face.y : face.y + face.h, face.x : face.x + face.w].mean()
    corner = diff[: face.y // 2, : max(4, face.x // 2)].mean()  # top-left background
    assert head > 3 * max(corner, 0.2)


def test_variations_differ_but_stay_subtle(portrait: Portrait) -> None:
    takes = render(portrait, "subtle blink, slight head tilt", frames=24, variations=3)
    assert [t.seed for t in takes] == [3, 4, 5]
    peaks = {t.info["blink_peak"] for t in takes}
    assert len(peaks) > 1 or not np.array_equal(takes[0].frames, takes[1].frames)
    for a, b in ((0, 1), (1, 2)):
        assert not np.array_equal(takes[a].frames, takes[b].frames)
    for take in takes:
        change = np.abs(take.frames.astype(np.int16) - take.frames[0].astype(np.int16)).mean()
        assert change < 12  # subtle: most of the picture barely changes


def test_mouth_closed_allows_only_a_closed_lip_smile(portrait: Portrait) -> None:
    (with_smile,) = render(portrait, "big smile", frames=12)
    (closed,) = render(portrait, "big smile, keep mouth closed", frames=12)
    assert "smile" in with_smile.info["components"]
    # Still a smile, but capped and with the lips protected (tests/test_warp_landmarks.py).
    assert "smile" in closed.info["components"] and closed.info["protected"] == "lips"
    assert "protected" not in with_smile.info
    assert "head_tilt" not in render(portrait, "head still, blink", frames=12)[0].info["components"]


def test_no_face_falls_back_to_whole_picture_motion() -> None:
    image = np.asarray(images.portrait_rgb(160, 200), dtype=np.uint8)
    (take,) = render(None, "subtle blink, gentle breathing", frames=16, image=image)
    assert take.info["fallback"]
    assert take.info["blink_peak"] is None
    assert np.array_equal(take.frames[0], take.frames[-1])
    assert np.abs(take.frames[8].astype(np.int16) - take.frames[0]).mean() > 0.5


def test_cancel_and_progress(portrait: Portrait) -> None:
    seen: list[float] = []
    token = CancelToken()

    def progress(fraction: float, stage: str) -> None:
        seen.append(fraction)
        if len(seen) == 2:
            token.cancel()

    request = RenderRequest(
        image=portrait.image,
        spec=parse_motion("blink"),
        variations=2,
        frames=30,
        fps=24,
        seed=0,
        face=portrait.face,
    )
    with pytest.raises(Cancelled):
        WarpBackend().render(request, progress, token)
    seen.clear()
    WarpBackend().render(request, lambda f, s: seen.append(f), CancelToken())
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_curves() -> None:
    phase = loop_phase(25)
    assert phase[0] == 0 and phase[-1] == pytest.approx(2 * np.pi)
    closure = blink_curve(48, 24, 0.5)
    assert closure.max() == 1.0 and closure[0] == 0 and closure[-1] == 0
    assert 3 <= int((closure > 0).sum()) <= 10  # about 0.3 s of blink


def test_fields_upsampled_once_per_take_draw_the_same_frames(portrait: Portrait) -> None:
    """A frame drawn from the full-resolution fields equals the per-frame upsampling of the
    summed field (resizing is linear): the speed-up changes no pixel beyond rounding."""
    from generation.backends.warp import _Grid, plan_variation, render_frame

    height, width = portrait.image.shape[:2]
    grid = _Grid(width, height)
    spec = parse_motion("blink, slight head tilt, gentle breathing, smile")
    plan = plan_variation(spec, portrait.face, grid, 24, 12, random.Random(5))
    fast = np.empty_like(portrait.image)
    slow = np.empty_like(portrait.image)
    for t in range(24):
        render_frame(portrait.image, grid, plan, t, fast)
        displacement = np.zeros((grid.fh, grid.fw, 2), dtype=np.float32)
        for component, vectors in zip(plan.components, plan.fields, strict=True):
            displacement += float(component.curve[t]) * vectors
        maps = cv2.resize(displacement, (width, height), interpolation=cv2.INTER_LINEAR)
        maps = np.ascontiguousarray(maps + grid.identity, dtype=np.float32)
        cv2.remap(portrait.image, maps, None, cv2.INTER_LINEAR, slow, cv2.BORDER_REFLECT101)
        # The blink shading is applied to both in render_frame only: compare outside the eyes.
        difference = np.abs(fast.astype(np.int16) - slow.astype(np.int16)).max(axis=2)
        if plan.closure[t] == 0:
            assert (difference > 1).mean() < 1e-4, t
