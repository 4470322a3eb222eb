"""The face model loads its landmark models on first use or beside detection (``load()``),
from any thread, and finds the same faces either way."""

from __future__ import annotations

import subprocess
import sys
import threading

import images

from generation.faces import FaceModel
from moderation.intake import load_image


def test_detection_beside_loading_finds_the_same_faces() -> None:
    rgb = load_image(images.astronaut_bytes()).rgb
    reference = FaceModel().load().find_faces(rgb)
    model = FaceModel()
    loader = threading.Thread(target=model.load)
    loader.start()
    found = model.find_faces(rgb)  # the landmarks wait for the predictor the thread is loading
    loader.join()
    assert found == reference
    assert len(found) == 1 and found[0].landmarks


def test_load_is_idempotent_and_detection_needs_no_explicit_load() -> None:
    rgb = load_image(images.astronaut_bytes()).rgb
    model = FaceModel()
    (face,) = model.find_faces(rgb)  # loads the predictor on first use
    assert model.load() is model and model.load() is model
    assert model.dense_landmarks(rgb, face).mesh  # the mesh loaded on first use too


def test_loading_every_model_prints_nothing() -> None:
    """The TFLite models run on the XNNPACK delegate, whose INFO line is caught: a CLI's
    stderr carries its own messages only."""
    script = (
        "import numpy as np\n"
        "from generation.faces import FaceModel\n"
        "model = FaceModel().load(everything=True)\n"
        "print(len(model.find_faces(np.zeros((200, 300, 3), np.uint8))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert (done.stdout, done.stderr) == ("0\n", "")
