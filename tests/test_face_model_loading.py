"""The face model loads its landmark models on first use or beside detection (``load()``),
from any thread, and finds the same faces either way."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import images
import pytest

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


class _RecordedDetector:
    """dlib's HOG detector, noting when each search starts (or failing, when ``broken``)."""

    def __init__(self, detector: Any, marks: list[str], broken: bool = False) -> None:
        self._detector = detector
        self._marks = marks
        self._broken = broken

    def run(self, image: Any, upsample: int, threshold: float) -> Any:
        self._marks.append("search")
        if self._broken:
            raise RuntimeError("the detector broke")
        return self._detector.run(image, upsample, threshold)


def _recorded_model(marks: list[str], broken: bool = False) -> FaceModel:
    model = FaceModel()
    model._detector = _RecordedDetector(model._detector, marks, broken)
    load = model.load

    def recorded_load(everything: bool = False) -> FaceModel:
        marks.append("load")
        return load(everything)

    model.load = recorded_load  # type: ignore[method-assign]
    return model


def test_the_landmark_load_waits_for_the_face_search_to_start() -> None:
    # The 5-point model's load holds the GIL for ~70 ms: it must not stall the shrinking of a
    # big photo that comes before the search, so it starts once HOG runs (without the GIL).
    rgb = load_image(images.astronaut_bytes()).rgb
    marks: list[str] = []
    model = _recorded_model(marks)
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(model.load_beside_search, 30.0)
        time.sleep(0.2)
        assert not loading.done() and marks == []
        found = model.find_faces(rgb)
        assert loading.result(timeout=30) is model
    assert marks[:2] == ["search", "load"]
    assert len(found) == 1 and found[0].landmarks


def test_the_landmark_load_does_not_wait_past_a_failed_search_or_its_time_limit() -> None:
    rgb = load_image(images.astronaut_bytes()).rgb
    marks: list[str] = []
    model = _recorded_model(marks, broken=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        loading = pool.submit(model.load_beside_search, 30.0)
        with pytest.raises(RuntimeError, match="the detector broke"):
            model.find_faces(rgb)
        assert loading.result(timeout=5) is model  # released by the failure, not the limit
    # No search at all: it loads once the time limit has passed.
    alone: list[str] = []
    started = time.monotonic()
    _recorded_model(alone).load_beside_search(0.2)
    assert alone == ["load"] and time.monotonic() - started >= 0.2
