"""Quality scores: identity catches drifting faces, motion sees stills, loop_seam sees jumps."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import images
import numpy as np
import pytest
from numpy.typing import NDArray

from generation.backend import CancelToken, FaceBox, RenderRequest, no_progress
from generation.backends.warp import WarpBackend
from generation.faces import FaceModel, geometry
from generation.motion import parse_motion
from generation.preprocess import frame_subject
from generation.quality import (
    Likeness,
    Scores,
    TakeScorer,
    flicker,
    loop_seam,
    motion_amount,
    rank,
    score,
)
from moderation.intake import load_image


@dataclass(frozen=True)
class Clip:
    frames: NDArray[np.uint8]
    face: FaceBox
    likeness: Likeness


@pytest.fixture(scope="module")
def clip() -> Clip:
    rgb = load_image(images.astronaut_bytes()).rgb
    model = FaceModel()
    (found,) = model.find_faces(rgb)
    framed = frame_subject(rgb, found, crop="auto", size=320)
    assert framed.face is not None
    face = model.landmarks(framed.image, framed.face)
    request = RenderRequest(
        image=framed.image,
        spec=parse_motion("subtle blink, slight head tilt, gentle breathing"),
        variations=1,
        frames=36,
        fps=24,
        seed=11,
        face=face,
    )
    (take,) = WarpBackend().render(request, no_progress, CancelToken())
    return Clip(take.frames, face, Likeness(model, framed.image, face))


def spread_eyes(frames: NDArray[np.uint8], face: FaceBox, amount: float) -> NDArray[np.uint8]:
    """Warp the eyes gradually apart over the clip (a face drifting away from its identity)."""
    geo = geometry(face)
    height, width = frames.shape[1:3]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    sigma = 0.3 * geo.eye_distance
    out = frames.copy()
    for t in range(len(frames)):
        s = amount * geo.eye_distance * t / (len(frames) - 1)
        shift = np.zeros_like(xs)
        for (ex, ey), sign in ((geo.left_eye, -1.0), (geo.right_eye, 1.0)):
            blob = np.exp(-((xs - ex) ** 2 + (ys - ey) ** 2) / (2 * sigma**2))
            shift -= sign * s * blob  # sample inward: the eye moves outward
        out[t] = cv2.remap(frames[t], xs + shift, ys, cv2.INTER_LINEAR)
    return out


def test_drifting_face_scores_worse_on_identity(clip: Clip) -> None:
    clean = clip.likeness.identity(clip.frames)
    drifting = clip.likeness.identity(spread_eyes(clip.frames, clip.face, 0.2))
    assert clean > 0.9
    assert drifting < clean - 0.2


def test_still_clip(clip: Clip) -> None:
    still = np.repeat(clip.frames[:1], 20, axis=0)
    scores = score(still, clip.likeness)
    assert scores.motion < 0.05
    assert scores.loop_seam == 0.0
    assert scores.flicker == 0.0
    assert scores.identity == pytest.approx(1.0)


def test_moving_clip_has_motion_and_no_seam(clip: Clip) -> None:
    frames = clip.frames
    assert motion_amount(frames) > 0.1
    assert loop_seam(frames) == 0.0


def test_jump_at_the_end_raises_loop_seam(clip: Clip) -> None:
    frames = clip.frames
    jumpy = frames.copy()
    jumpy[-1] = frames[len(frames) // 2]
    shifted = frames.copy()
    shifted[-1] = np.roll(frames[-1], 6, axis=1)
    assert loop_seam(jumpy) > 1.0
    assert loop_seam(shifted) > loop_seam(jumpy) > loop_seam(frames)


def test_flicker_sees_brightness_pumping(clip: Clip) -> None:
    frames = clip.frames
    pumped = frames.astype(np.int16)
    pumped[::2] += 12
    pumping = np.clip(pumped, 0, 255).astype(np.uint8)
    assert flicker(pumping) > 10 * max(flicker(frames), 0.05)


def test_rank_prefers_identity_and_motion_and_flags_drift() -> None:
    good = Scores(identity=0.98, loop_seam=0.0, flicker=0.05, motion=0.4)
    still = Scores(identity=1.0, loop_seam=0.0, flicker=0.0, motion=0.0)
    drifted = Scores(identity=0.5, loop_seam=0.0, flicker=0.05, motion=0.8)
    seam = Scores(identity=0.98, loop_seam=3.0, flicker=0.05, motion=0.4)
    ranked = rank([drifted, still, good, seam])
    by_index = {r.index: r for r in ranked}
    assert by_index[2].rank == 1
    assert by_index[0].flagged and not by_index[2].flagged
    assert by_index[0].rank > by_index[2].rank
    assert by_index[3].rank > by_index[2].rank
    assert sorted(r.rank for r in ranked) == [1, 2, 3, 4]


def test_identity_without_face_is_neutral(clip: Clip) -> None:
    assert score(clip.frames, None).identity == 1.0


def test_scores_made_frame_by_frame_equal_the_scores_of_the_whole_take(clip: Clip) -> None:
    """``TakeScorer`` (fed as frames are drawn, as ``animate`` does) and ``score`` agree, and
    each part equals the standalone score functions."""
    frames = clip.frames
    scorer = TakeScorer(frames, clip.likeness)
    for t in range(len(frames)):
        scorer.add(t)
    fed = scorer.result()
    whole = score(frames, clip.likeness)
    assert fed == whole
    assert fed.identity == pytest.approx(clip.likeness.identity(frames))
    assert fed.loop_seam == pytest.approx(loop_seam(frames))
    assert fed.flicker == pytest.approx(flicker(frames))
    assert fed.motion == pytest.approx(motion_amount(frames))


def test_frames_reach_the_take_scorer_in_order_and_all_of_them(clip: Clip) -> None:
    scorer = TakeScorer(clip.frames, None)
    with pytest.raises(ValueError, match="frame 1 came before frame 0"):
        scorer.add(1)
    scorer.add(0)
    with pytest.raises(ValueError, match="only 1 of"):
        scorer.result()


def test_a_closed_loops_last_frame_adds_no_motion(clip: Clip) -> None:
    """The closing frame equals frame 0: its flow is zero, not Farnebäck's numerical noise."""
    still = np.repeat(clip.frames[:1], 4, axis=0)
    assert motion_amount(still) == 0.0
