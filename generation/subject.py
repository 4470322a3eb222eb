"""What a photo shows: a human face, an animal, or neither — the decision everything starts from.

``find_subject(model, rgb)`` returns a ``Subject``: its ``kind`` (``"face"`` only for a human face,
including statues, paintings and old photos of people; ``"animal"`` for a cat's face; ``"none"``
otherwise), the candidate heads in source pixels ordered left to right, which one is animated
(``chosen``: the largest by default, or the one asked for), and warnings for profile views and
faces too small to animate feature by feature. It never makes a face up: no detection, no face.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import FaceBox, SubjectKind
from generation.faces import MIN_FACE_PX, FaceModel
from livingphoto.errors import UsageError
from livingphoto.resample import halve_towards

# How the warning about a face only the second detector found begins (``choose``).
SECOND_DETECTOR_WARNING = "the face was found only by the second face detector"

__all__ = ["Subject", "SubjectKind", "choose", "find_subject", "salient_centre"]

_KINDS = frozenset(get_args(SubjectKind))


@dataclass(frozen=True)
class Subject:
    """The photo's subject: ``faces`` are heads in source pixels, left to right."""

    kind: SubjectKind
    faces: tuple[FaceBox, ...]
    chosen: int | None  # 0-based index into ``faces``; None when there is none
    warnings: tuple[str, ...] = ()

    @property
    def face(self) -> FaceBox | None:
        """The chosen head, or None."""
        return None if self.chosen is None else self.faces[self.chosen]

    @property
    def animatable(self) -> FaceBox | None:
        """The chosen head if its features can be animated (large enough), else None."""
        face = self.face
        return face if face is not None and min(face.w, face.h) >= MIN_FACE_PX else None

    def to_json(self) -> dict[str, Any]:
        """``{"kind": ..., "faces": [[x, y, w, h], ...], "chosen": k | None}`` (DESIGN.md §2)."""
        return {
            "kind": self.kind,
            "faces": [f.to_json() for f in self.faces],
            "chosen": self.chosen,
        }

    def to_record(self) -> dict[str, Any]:
        """Everything (each face's landmarks too), JSON-ready: what ``from_record`` reads back.
        The service hands it to the worker with the job, so the photo is searched once."""
        return {
            "kind": self.kind,
            "faces": [f.to_record() for f in self.faces],
            "chosen": self.chosen,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Subject:
        """The subject ``to_record`` wrote; ``ValueError`` (or ``KeyError``/``TypeError``) when
        ``data`` is not one."""
        kind = str(data["kind"])
        if kind not in _KINDS:
            raise ValueError(f"unknown subject kind {kind!r}")
        faces = tuple(FaceBox.from_record(f) for f in data["faces"])
        chosen = data.get("chosen")
        if chosen is not None and not 0 <= int(chosen) < len(faces):
            raise ValueError(f"chosen face {chosen} out of range for {len(faces)} faces")
        return cls(
            kind=cast(SubjectKind, kind),
            faces=faces,
            chosen=None if chosen is None else int(chosen),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
        )


def find_subject(model: FaceModel, rgb: NDArray[np.uint8], face: int | None = None) -> Subject:
    """Human faces first, else cat faces, else nothing; ``face`` picks a head by index.

    Raises ``UsageError`` when ``face`` is out of range for what was found.
    """
    kind, found = model.find_heads(rgb)
    return choose(Subject(kind=kind, faces=tuple(found), chosen=None), face)


def choose(subject: Subject, face: int | None) -> Subject:
    """``subject`` with head ``face`` chosen (default: the largest) and its warnings."""
    faces = subject.faces
    if face is not None and not 0 <= face < len(faces):
        found = "no face was found" if not faces else f"faces are numbered 0 to {len(faces) - 1}"
        raise UsageError(f"face number {face} is out of range: {found}")
    if not faces:
        warning = "no face found: used whole-picture motion centred on the main subject"
        return Subject("none", (), None, (warning,))
    chosen = face if face is not None else max(range(len(faces)), key=lambda i: faces[i].w)
    picked = faces[chosen]
    warnings: list[str] = []
    what = "face" if subject.kind == "face" else "animal face"
    if len(faces) > 1:
        warnings.append(
            f"{len(faces)} {what}s found: animating number {chosen} (left to right, from 0); "
            "several faces drift at different rates, choose one with --face N"
        )
    if min(picked.w, picked.h) < MIN_FACE_PX:
        warnings.append(
            f"the {what} is only {picked.w} px wide (under {MIN_FACE_PX} px): "
            "used whole-picture motion instead of a blink and head motion"
        )
    elif picked.detector == "blazeface":
        warnings.append(
            f"{SECOND_DETECTOR_WARNING} (an unusual shape, angle or "
            "light): no blink and no likeness score; head and body motion only"
        )
    elif not picked.frontal:
        warnings.append(
            "the face is seen in profile: no blink (the eyes cannot be placed reliably); "
            "head and body motion only"
        )
    if subject.kind == "animal":
        warnings.append("an animal: pet motion (breathing, a small head bob), no human blink")
    return Subject(subject.kind, faces, chosen, tuple(warnings))


def salient_centre(rgb: NDArray[np.uint8]) -> tuple[float, float]:
    """The centre (x, y, source pixels) of the most salient region (spectral residual saliency,
    Hou & Zhang 2007, on a 64-px copy), pulled a little towards the picture's centre."""
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(halve_towards(rgb, (64, 64)), cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = np.asarray(cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA), dtype=np.float32)
    spectrum = np.fft.fft2(small)
    log_amp = np.log(np.abs(spectrum) + 1e-6).astype(np.float32)
    residual = log_amp - np.asarray(cv2.blur(log_amp, (3, 3)), dtype=np.float32)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
    saliency = np.asarray(cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), 3.0))
    weights = saliency / (float(saliency.sum()) or 1.0)
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float64)
    cx = float((weights * xs).sum()) / 63.0
    cy = float((weights * ys).sum()) / 63.0
    # Half way to the centre: saliency is a hint, not a verdict.
    return ((0.5 + 0.5 * (cx - 0.5)) * width, (0.5 + 0.5 * (cy - 0.5)) * height)
