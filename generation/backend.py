"""The one backend interface that both ``warp`` (CPU) and ``diffusers`` (GPU) implement.

A backend loads what it needs once in ``setup()`` and then serves many ``render()`` calls
(the cog pattern). It receives a sanitised, cropped, resized RGB photo and a parsed motion spec,
and returns raw frames for each variation. Export (ffmpeg), scoring and ranking happen after,
on one path shared by every backend (``generation.animator``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from generation.motion import MotionSpec
from livingphoto.errors import Cancelled

# Frames of one take: shape (T, H, W, 3), dtype uint8, RGB.
Frames = NDArray[np.uint8]
# An RGB image: shape (H, W, 3), dtype uint8.
Image = NDArray[np.uint8]

# What a photo shows: a human face, an animal's face, or neither (generation.subject).
SubjectKind = Literal["face", "animal", "none"]

# progress(fraction in 0..1, short stage label)
ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, stage: str) -> None:
    """A progress callback that ignores reports."""


class CancelToken:
    """Set from any thread to cancel a running job; backends call ``check()`` between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ``Cancelled`` if the job was cancelled."""
        if self._event.is_set():
            raise Cancelled("the job was cancelled")


@dataclass(frozen=True)
class FaceBox:
    """Where a face and its features are, in pixel coordinates of the image it was found in
    (``RenderRequest.image`` for a backend; the source photo in ``Inspection.faces``)."""

    x: int
    y: int
    w: int
    h: int
    # Eye centres (x, y) in the picture (left_eye has the smaller x); None when unknown.
    left_eye: tuple[float, float] | None = None
    right_eye: tuple[float, float] | None = None
    # The base of the nose (x, y); None when unknown.
    nose: tuple[float, float] | None = None
    # The face model's landmarks (dlib 5-point order: one eye's outer and inner corner, the
    # other eye's outer and inner corner, the nose base); empty when unknown.
    landmarks: tuple[tuple[float, float], ...] = ()
    # MediaPipe's 468-point face mesh (generation.mesh), empty when not measured.
    mesh: tuple[tuple[float, float], ...] = ()
    # False for a face seen in profile (the detector's side-view models found it).
    frontal: bool = True
    # The detector's confidence (dlib HOG margin, or the second detector's probability; 0.0
    # when not measured).
    score: float = 0.0
    # What found it: "hog" (dlib), "blazeface" (the second detector, when HOG found no face:
    # generation.blazeface), "cat-cascade" (OpenCV's cat faces).
    detector: str = "hog"

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> FaceBox:
        """This box in another image: every coordinate ``(x, y)`` becomes
        ``(x * sx + dx, y * sy + dy)``."""

        def point(p: tuple[float, float] | None) -> tuple[float, float] | None:
            return None if p is None else (p[0] * sx + dx, p[1] * sy + dy)

        return FaceBox(
            x=round(self.x * sx + dx),
            y=round(self.y * sy + dy),
            w=round(self.w * sx),
            h=round(self.h * sy),
            left_eye=point(self.left_eye),
            right_eye=point(self.right_eye),
            nose=point(self.nose),
            landmarks=tuple((p[0] * sx + dx, p[1] * sy + dy) for p in self.landmarks),
            mesh=tuple((p[0] * sx + dx, p[1] * sy + dy) for p in self.mesh),
            frontal=self.frontal,
            score=self.score,
            detector=self.detector,
        )

    def to_json(self) -> list[int]:
        """``[x, y, w, h]`` in pixels."""
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    def to_record(self) -> dict[str, Any]:
        """Every field, JSON-ready (points as ``[x, y]``): what ``from_record`` reads back."""

        def point(p: tuple[float, float] | None) -> list[float] | None:
            return None if p is None else [float(p[0]), float(p[1])]

        return {
            "box": self.to_json(),
            "left_eye": point(self.left_eye),
            "right_eye": point(self.right_eye),
            "nose": point(self.nose),
            "landmarks": [[float(x), float(y)] for x, y in self.landmarks],
            "mesh": [[float(x), float(y)] for x, y in self.mesh],
            "frontal": bool(self.frontal),
            "score": float(self.score),
            "detector": self.detector,
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> FaceBox:
        """The box ``to_record`` wrote; ``ValueError`` (or ``KeyError``/``TypeError``) when
        ``data`` is not one."""

        def point(p: Any) -> tuple[float, float] | None:
            if p is None:
                return None
            x, y = p
            return (float(x), float(y))

        def points(items: Any) -> tuple[tuple[float, float], ...]:
            return tuple((float(x), float(y)) for x, y in items)

        x, y, w, h = (int(v) for v in data["box"])
        if w <= 0 or h <= 0:
            raise ValueError(f"a face box needs a positive size, got {w}x{h}")
        return cls(
            x=x,
            y=y,
            w=w,
            h=h,
            left_eye=point(data.get("left_eye")),
            right_eye=point(data.get("right_eye")),
            nose=point(data.get("nose")),
            landmarks=points(data.get("landmarks", ())),
            mesh=points(data.get("mesh", ())),
            frontal=bool(data.get("frontal", True)),
            score=float(data.get("score", 0.0)),
            detector=str(data.get("detector", "hog")),
        )


@dataclass(frozen=True)
class RenderRequest:
    image: Image
    spec: MotionSpec
    variations: int
    frames: int
    fps: int
    seed: int
    # The head to animate (in ``image`` pixels): a human face when ``kind == "face"``, an
    # animal's face when ``kind == "animal"``; None for whole-picture motion.
    face: FaceBox | None = None
    kind: SubjectKind = "face"
    # Without a face: the centre (x, y) of the salient subject, in ``image`` pixels.
    focus: tuple[float, float] | None = None


@dataclass
class Take:
    """One variation as produced by a backend, before export and scoring."""

    frames: Frames
    seed: int
    # Backend-specific facts worth reporting (e.g. the prompt actually sent to a model).
    info: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str

    def setup(self) -> None:
        """Load weights/detectors once per process. Idempotent."""

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        """Produce ``request.variations`` takes of ``request.frames`` frames each.

        Raises ``Cancelled`` (re-raised, never swallowed) or ``GenerationFailed``.
        """
        ...


@runtime_checkable
class StreamingBackend(Backend, Protocol):
    """A backend that can hand over each take as soon as it is rendered (the sleep backend).

    ``render_takes`` yields the same takes as ``render``, in order; the caller encodes and scores
    take k while take k + 1 is drawn. A batched GPU call that returns every take at once has
    nothing to stream and implements ``render`` only.
    """

    def render_takes(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> Iterator[Take]: ...


@dataclass(frozen=True)
class DrawnFrame:
    """Frames ``0..t`` of take ``take`` (0-based) are drawn into ``frames`` (T, H, W, 3).

    A take's frames come in order, and takes one after another; the event of a take's last
    frame carries the finished ``Take`` in ``done`` (None before).
    """

    take: int
    t: int
    frames: Frames
    seed: int
    done: Take | None = None


@runtime_checkable
class FrameStreamingBackend(Backend, Protocol):
    """A backend that draws takes frame by frame (the warp backend): the caller encodes each
    frame as soon as it is drawn, so the encoders of every take run while the next frames are
    drawn. ``draw_frames`` yields one ``DrawnFrame`` per frame; its takes equal ``render``'s."""

    def draw_frames(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> Iterator[DrawnFrame]: ...
