"""Face embeddings made in a helper process equal those made in-process, start only when
needed, and fall back to in-process embedding when the helper is gone."""

from __future__ import annotations

import images
import numpy as np
import pytest

from generation.embedding import RECOGNIZER_FILE, EmbeddingProcess, models_dir
from generation.faces import FaceModel
from moderation.intake import load_image


@pytest.fixture(scope="module")
def chip() -> np.ndarray:
    rgb = load_image(images.astronaut_bytes()).rgb
    model = FaceModel()
    (face,) = model.find_faces(rgb)
    return model.chip(rgb, face)


def test_the_helper_embeds_exactly_as_in_process(chip: np.ndarray) -> None:
    expected = FaceModel().embed(chip)
    with EmbeddingProcess(models_dir() / RECOGNIZER_FILE) as process:
        model = FaceModel(embedder=process)
        first = model.embed(chip)
        again = model.embed(np.ascontiguousarray(chip[:, ::-1]))  # another face: another answer
    np.testing.assert_allclose(first, expected, atol=1e-6)
    assert float(np.dot(first, again)) < 0.999


def test_the_helper_starts_only_on_the_first_embedding(chip: np.ndarray) -> None:
    process = EmbeddingProcess(models_dir() / RECOGNIZER_FILE)
    with process:
        assert not process.running  # nothing started for a run that needs no embedding
        process.embed(chip)
        assert process.running
    assert not process.running  # stopped with the run


def test_a_dead_helper_falls_back_to_in_process(chip: np.ndarray) -> None:
    with EmbeddingProcess(models_dir() / RECOGNIZER_FILE) as process:
        model = FaceModel(embedder=process)
        model.embed(chip)
        assert process.running
        process.close()  # as if the child had died
        vector = model.embed(chip)  # the helper is gone: made here, same answer
    np.testing.assert_allclose(vector, FaceModel().embed(chip), atol=1e-6)


def test_a_helper_that_cannot_start_falls_back(chip: np.ndarray, tmp_path: object) -> None:
    from pathlib import Path

    missing = Path(str(tmp_path)) / "no-such-model.dat"
    with EmbeddingProcess(missing) as process:
        model = FaceModel(embedder=process)
        vector = model.embed(chip)  # the child exits at once (no model): embedded here
    np.testing.assert_allclose(vector, FaceModel().embed(chip), atol=1e-6)


def test_a_chip_of_the_wrong_shape_is_refused() -> None:
    with (
        EmbeddingProcess(models_dir() / RECOGNIZER_FILE) as process,
        pytest.raises(ValueError, match="150"),
    ):
        process.embed(np.zeros((10, 10, 3), dtype=np.uint8))
