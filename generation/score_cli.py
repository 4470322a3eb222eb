"""``livingphoto score PHOTO CLIP... [--json]``: the scores and flag ``animate`` gives, for any clip.

Usage::

    livingphoto score examples/astronaut.jpg livingphoto-out/variation-1.mp4
    livingphoto score photo.jpg clip-a.mp4 clip-b.gif --json

Each clip is compared with the photo's face (the largest, or ``--face N``): identity (face-recognition
embeddings and eye spacing, ``generation.quality.Likeness``), loop seam, flicker and motion.
``--json`` prints ``{"clips": [{"path", "scores": {...}, "flagged"}]}`` (DESIGN.md section 2).
Exit codes: 0 done; 2 for a missing or unreadable photo or clip, a file that is not a video, or a
photo without a human face (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from livingphoto.errors import LivingPhotoError, UsageError

if TYPE_CHECKING:
    from generation.backend import FaceBox
    from generation.faces import FaceModel
    from generation.quality import Scores


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``score`` subcommand to ``sub``."""
    parser = sub.add_parser(
        "score",
        help="score clips against their source photo (identity, seam, flicker, motion)",
        description="Score looping clips against the photo they were made from.",
    )
    parser.add_argument("photo", type=Path, help="the source photo (JPEG, PNG, WebP, ...)")
    parser.add_argument("clips", type=Path, nargs="+", help="clips (mp4, gif, webp, ...)")
    parser.add_argument(
        "--face", type=int, default=None, help="which face of the photo (0-based, left to right)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_score)


def run_score(args: argparse.Namespace) -> int:
    """The ``score`` handler."""
    from generation.faces import FaceModel
    from generation.quality import IDENTITY_THRESHOLD
    from generation.subject import find_subject
    from moderation.intake import load_image_file

    photo = load_image_file(args.photo)
    for clip in args.clips:
        if not clip.is_file():
            raise UsageError(f"no clip at {clip}")
    model = FaceModel()
    subject = find_subject(model, photo.rgb, args.face)
    face = subject.face
    if subject.kind != "face" or face is None:
        raise UsageError(
            f"no human face in the photo {args.photo}: nothing to compare the clips to"
        )
    results: list[dict[str, Any]] = []
    for clip in args.clips:
        frames = _frames(clip)
        scores = score_clip(model, photo.rgb, face, frames)
        results.append(
            {
                "path": str(clip),
                "scores": scores.to_json(),
                "flagged": scores.identity < IDENTITY_THRESHOLD,
            }
        )
    if args.json:
        print(json.dumps({"clips": results}))
        return 0
    for result in results:
        s = result["scores"]
        flag = "  (face drifts: not recommended)" if result["flagged"] else ""
        print(
            f"{result['path']}  identity {s['identity']:.3f}  loop seam {s['loop_seam']:.3f}  "
            f"flicker {s['flicker']:.3f}  motion {s['motion']:.2f}%{flag}"
        )
    return 0


def _frames(clip: Path) -> NDArray[np.uint8]:
    from generation.export import read_frames

    try:
        frames = read_frames(clip)
    except LivingPhotoError as error:
        raise UsageError(f"cannot read {clip} as a video: {error}") from None
    if len(frames) < 2:
        raise UsageError(f"{clip} is not a video (a single picture)")
    return frames


def score_clip(
    model: FaceModel, photo: NDArray[np.uint8], face: FaceBox, frames: NDArray[np.uint8]
) -> Scores:
    """The four scores of ``frames`` against ``face`` of ``photo``.

    The face is found again in the clip's first frame (the clip may be cropped and scaled):
    the detection whose embedding is closest to the photo's face. A clip with no face at all
    in its first frame scores identity 0.
    """
    from generation.quality import Likeness, Scores, score

    plain = score(frames, None)
    candidates = model.find_faces(frames[0])
    if not candidates:
        return Scores(0.0, plain.loop_seam, plain.flicker, plain.motion)
    reference = model.embedding(photo, face)
    best = max(candidates, key=lambda c: float(np.dot(model.embedding(frames[0], c), reference)))
    likeness = Likeness(model, photo, face, frames_face=best)
    return Scores(likeness.identity(frames), plain.loop_seam, plain.flicker, plain.motion)
