"""The likeness ladder the identity threshold is calibrated on (docs/faces.md), built from two
public-domain portraits in ``examples/``: Eileen Collins (NASA) and Grace Hopper (US Navy).

Rungs (each a 24-frame clip of the framed astronaut portrait; the change fills its middle third,
like a take whose face turns into someone else for a second):

- ``same-blink-tilt``: the warp backend's own blink + head tilt + nod + breathing (same person);
- ``blend-30`` / ``blend-60`` / ``blend-100``: the face cross-faded 30/60/100 % toward Grace
  Hopper's, aligned on the 5 landmarks and colour-matched inside a feathered face oval;
- ``eyes-5`` / ``eyes-10``: the eyes pushed apart by 5 % / 10 % of their spacing.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from images import EXAMPLES
from numpy.typing import NDArray

from generation.backend import CancelToken, FaceBox, RenderRequest, no_progress
from generation.backends.warp import WarpBackend
from generation.faces import FaceModel
from generation.motion import parse_motion
from generation.preprocess import frame_subject
from moderation.intake import load_image

FRAMES = 24


@dataclass(frozen=True)
class Portrait:
    image: NDArray[np.uint8]  # the framed still the clips are made from
    face: FaceBox  # with landmarks, in ``image`` pixels


def portrait(model: FaceModel, name: str = "astronaut.jpg", size: int = 512) -> Portrait:
    rgb = load_image((EXAMPLES / name).read_bytes()).rgb
    face = max(model.find_faces(rgb), key=lambda f: f.w)
    framed = frame_subject(rgb, face, crop="auto", size=size)
    assert framed.face is not None
    return Portrait(framed.image, model.landmarks(framed.image, framed.face))


def middle_third(still: NDArray[np.uint8], changed: NDArray[np.uint8]) -> NDArray[np.uint8]:
    frames = np.repeat(still[None], FRAMES, axis=0)
    frames[FRAMES // 3 : 2 * FRAMES // 3] = changed
    return frames


def same_person(
    source: Portrait, prompt: str = "blink, head tilt, nod, gentle breathing", seed: int = 3
) -> NDArray[np.uint8]:
    """One warp take of ``source`` (the same person, moving as ``prompt`` says)."""
    request = RenderRequest(
        image=source.image,
        spec=parse_motion(prompt),
        variations=1,
        frames=FRAMES,
        fps=12,
        seed=seed,
        face=source.face,
    )
    (take,) = WarpBackend().render(request, no_progress, CancelToken())
    return take.frames


def _oval(face: FaceBox, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """A feathered mask over the inner face (brows to chin), 0..1."""
    assert face.left_eye and face.right_eye and face.nose
    mask = np.zeros(shape[:2], dtype=np.float32)
    cx = (face.left_eye[0] + face.right_eye[0]) / 2
    eye_y = (face.left_eye[1] + face.right_eye[1]) / 2
    span = face.right_eye[0] - face.left_eye[0]
    centre = (round(cx), round((eye_y + face.nose[1]) / 2 + 0.15 * span))
    axes = (round(1.0 * span), round(1.25 * span))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
    blurred: NDArray[np.float32] = np.asarray(
        cv2.GaussianBlur(mask, (0, 0), 0.12 * span), dtype=np.float32
    )
    return blurred


def blend_toward(source: Portrait, other: Portrait, alpha: float) -> NDArray[np.uint8]:
    """``source`` with its face cross-faded ``alpha`` of the way to ``other``'s face."""
    src = np.array(source.face.landmarks, dtype=np.float32)
    dst = np.array(other.face.landmarks, dtype=np.float32)
    matrix, _ = cv2.estimateAffinePartial2D(dst, src)
    height, width = source.image.shape[:2]
    aligned = np.asarray(
        cv2.warpAffine(other.image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT),
        dtype=np.float32,
    )
    mask = _oval(source.face, source.image.shape)
    still = source.image.astype(np.float32)
    inside = mask > 0.5
    # Match the other face's colour statistics to this face's, so only identity changes.
    for c in range(3):
        a, b = aligned[..., c][inside], still[..., c][inside]
        aligned[..., c] = (aligned[..., c] - a.mean()) / (a.std() + 1e-6) * b.std() + b.mean()
    weight = (alpha * mask)[..., None]
    return np.clip(still * (1 - weight) + aligned * weight + 0.5, 0, 255).astype(np.uint8)


def push_eyes(source: Portrait, amount: float) -> NDArray[np.uint8]:
    """``source`` with each eye moved outward so their spacing grows by ``amount`` (0.1 = 10 %)."""
    face = source.face
    assert face.left_eye and face.right_eye
    height, width = source.image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    span = float(
        np.hypot(face.right_eye[0] - face.left_eye[0], face.right_eye[1] - face.left_eye[1])
    )
    sigma = 0.28 * span
    shift = np.zeros_like(xs)
    for (ex, ey), sign in ((face.left_eye, -1.0), (face.right_eye, 1.0)):
        blob = np.exp(-((xs - ex) ** 2 + (ys - ey) ** 2) / (2 * sigma**2))
        shift -= sign * (amount * span / 2) * blob  # sample inward: the eye moves outward
    return np.asarray(cv2.remap(source.image, xs + shift, ys, cv2.INTER_LINEAR), dtype=np.uint8)


def ladder(model: FaceModel) -> tuple[Portrait, dict[str, NDArray[np.uint8]]]:
    """The source portrait and the rungs' clips, by name."""
    source = portrait(model)
    other = portrait(model, "grace_hopper.jpg")
    rungs = {"same-blink-tilt": same_person(source)}
    for alpha in (0.3, 0.6, 1.0):
        rungs[f"blend-{round(alpha * 100)}"] = middle_third(
            source.image, blend_toward(source, other, alpha)
        )
    for amount in (0.05, 0.10):
        rungs[f"eyes-{round(amount * 100)}"] = middle_third(source.image, push_eyes(source, amount))
    return source, rungs
