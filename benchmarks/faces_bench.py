"""Face model cost: detection per photo and likeness scoring per take, as ratios to the warp
render of that take (same run, same machine; timings on a shared box are noisy, ratios less so).

Usage::

    .venv/bin/python benchmarks/faces_bench.py            # 3 s x 24 fps @ 512 px, 3 takes
"""

from __future__ import annotations

import time
from pathlib import Path

from generation.backend import CancelToken, RenderRequest, no_progress
from generation.backends.warp import WarpBackend
from generation.faces import FaceModel
from generation.motion import parse_motion
from generation.preprocess import frame_subject
from generation.quality import Likeness, score
from generation.subject import find_subject
from moderation.intake import load_image

PHOTO = Path(__file__).resolve().parent.parent / "examples" / "astronaut.jpg"


def main() -> None:
    started = time.perf_counter()
    model = FaceModel()
    load_s = time.perf_counter() - started
    image = load_image(PHOTO.read_bytes())
    mark = time.perf_counter()
    subject = find_subject(model, image.rgb)
    detect_s = time.perf_counter() - mark
    framed = frame_subject(image.rgb, subject.face, crop="auto", size=512)
    assert framed.face is not None
    face = model.landmarks(framed.image, framed.face)
    request = RenderRequest(
        image=framed.image,
        spec=parse_motion("subtle blink, slight head tilt, gentle breathing"),
        variations=3,
        frames=72,
        fps=24,
        seed=1,
        face=face,
    )
    mark = time.perf_counter()
    takes = WarpBackend().render(request, no_progress, CancelToken())
    render_s = (time.perf_counter() - mark) / len(takes)
    mark = time.perf_counter()
    for take in takes:
        score(take.frames, None)
    plain_s = (time.perf_counter() - mark) / len(takes)
    mark = time.perf_counter()
    likeness = Likeness(model, framed.image, face)
    for take in takes:
        likeness.identity(take.frames)
    identity_s = (time.perf_counter() - mark) / len(takes)
    score_s = plain_s + identity_s
    rows = [
        ("model load (once per process)", load_s),
        ("detect + landmarks, per photo", detect_s),
        ("warp render, per take", render_s),
        ("seam + flicker + motion, per take", plain_s),
        ("identity (likeness), per take", identity_s),
        ("all scores, per take", score_s),
    ]
    for name, seconds in rows:
        print(f"{name:36s} {seconds * 1000:7.0f} ms  {seconds / render_s:5.2f} x render")


if __name__ == "__main__":
    main()
