"""Identity is measured by face-recognition embeddings: the likeness ladder (docs/faces.md)."""

from __future__ import annotations

import numpy as np
import pytest
from likeness_ladder import ladder, portrait, same_person
from numpy.typing import NDArray

from generation.faces import FaceModel
from generation.quality import IDENTITY_THRESHOLD, Likeness


@pytest.fixture(scope="module")
def scores() -> dict[str, float]:
    model = FaceModel()
    source, rungs = ladder(model)
    likeness = Likeness(model, source.image, source.face)
    return {name: likeness.identity(frames) for name, frames in rungs.items()}


def test_the_same_person_blinking_and_tilting_is_never_flagged(scores: dict[str, float]) -> None:
    assert scores["same-blink-tilt"] > IDENTITY_THRESHOLD + 0.1


def test_blends_toward_another_person_score_lower_the_further_they_go(
    scores: dict[str, float],
) -> None:
    assert scores["blend-30"] < scores["same-blink-tilt"] - 0.04  # clearly lower
    assert scores["blend-30"] > IDENTITY_THRESHOLD
    assert scores["blend-60"] < IDENTITY_THRESHOLD
    assert scores["blend-100"] < scores["blend-60"] < scores["blend-30"]


def test_eyes_pushed_apart_by_ten_percent_are_flagged(scores: dict[str, float]) -> None:
    assert scores["eyes-10"] < IDENTITY_THRESHOLD < scores["eyes-5"]


def test_a_still_clip_is_the_same_face() -> None:
    model = FaceModel()
    shot = portrait(model)
    frames: NDArray[np.uint8] = np.repeat(shot.image[None], 8, axis=0)
    assert Likeness(model, shot.image, shot.face).identity(frames) == pytest.approx(1.0, abs=1e-3)


def test_a_blink_is_never_taken_for_another_face() -> None:
    """Wherever the samples fall (some land on the closed eyes), the same person passes."""
    model = FaceModel()
    shot = portrait(model)
    frames = same_person(shot)
    for samples in range(3, 12):
        value = Likeness(model, shot.image, shot.face, samples=samples).identity(frames)
        assert value > IDENTITY_THRESHOLD + 0.05, samples


class CountingModel(FaceModel):
    """A face model that counts its embeddings (the 75 ms network runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed(self, chip: NDArray[np.uint8]) -> NDArray[np.float32]:
        self.embedded += 1
        return super().embed(chip)


def test_a_still_clip_needs_no_embedding_at_all() -> None:
    """Nothing changed: neither the frames nor the photo itself are embedded."""
    model = CountingModel()
    shot = portrait(model)
    frames: NDArray[np.uint8] = np.repeat(shot.image[None], 12, axis=0)
    assert Likeness(model, shot.image, shot.face, samples=6).identity(frames) == 1.0
    assert model.embedded == 0


def test_only_the_most_changed_frames_are_embedded() -> None:
    """Six frames looked at, one embedded (plus the photo's own embedding, once), and the
    changed face is still found: the frame that changed most is the one embedded."""
    model = CountingModel()
    source, rungs = ladder(model)
    likeness = Likeness(model, source.image, source.face, samples=6, embeddings=1)
    value = likeness.identity(rungs["blend-60"])
    assert value < IDENTITY_THRESHOLD
    assert model.embedded <= 3  # the photo, the most changed frame, and its re-check
    before = model.embedded
    likeness.identity(rungs["blend-100"])
    assert model.embedded - before <= 2  # the photo's embedding is made once per Likeness


def test_likeness_rejects_an_empty_budget() -> None:
    model = FaceModel()
    shot = portrait(model)
    with pytest.raises(ValueError, match="at least 1"):
        Likeness(model, shot.image, shot.face, embeddings=0)


@pytest.mark.parametrize("seed", range(6))
def test_a_grainy_scan_that_only_moves_needs_no_embedding(seed: int) -> None:
    """A grainy old portrait (Grace Hopper) changes by many grey levels as the warp moves it
    (head tilt, nod, breathing); once the optical flow has aligned the photo's face, nothing is
    left: it is not embedded and it is the same face, whatever the take. (A sampled frame that
    shows a blink is embedded: a closed eye is a change the flow cannot align.)"""
    model = CountingModel()
    shot = portrait(model, "grace_hopper.jpg")
    frames = same_person(shot, "head tilt, nod, gentle breathing", seed=seed)
    value = Likeness(model, shot.image, shot.face, samples=8).identity(frames)
    assert value > 0.95
    assert model.embedded == 0


def test_a_blend_is_embedded_although_the_grain_is_aligned() -> None:
    """The flow cannot turn one face into another: a 30 % blend is still embedded and scored."""
    model = CountingModel()
    source, rungs = ladder(model)
    value = Likeness(model, source.image, source.face).identity(rungs["blend-30"])
    assert model.embedded >= 2  # the photo and the blended frame
    assert value < 0.97
