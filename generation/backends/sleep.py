"""``sleep``: a real backend of fixed duration, for tests and the service load benchmark.

It takes ``seconds`` per render whatever the request (each take after its share, streamed), reports progress in small steps, honours
cancellation between steps, and returns valid frames: the photo with a gentle brightness pulse
that loops (the first and last frames match), one take per requested variation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import numpy as np

from generation.backend import CancelToken, Frames, ProgressFn, RenderRequest, Take

_STEP_S = 0.02


class SleepBackend:
    name = "sleep"

    def __init__(self, seconds: float = 0.5) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        self.seconds = seconds

    def setup(self) -> None:
        """Nothing to load."""

    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        return list(self.render_takes(request, progress, cancel))

    def render_takes(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> Iterator[Take]:
        """The takes of ``render``, each after its share of ``seconds`` (streamed like warp)."""
        cancel.check()
        count = max(1, request.variations)
        started = time.monotonic()
        for k in range(request.variations):
            deadline = started + self.seconds * (k + 1) / count
            while True:
                remaining = deadline - time.monotonic()
                elapsed = time.monotonic() - started
                done = elapsed / self.seconds if self.seconds > 0 else 1.0
                progress(min(1.0, max(0.0, done)), "sleeping")
                if remaining <= 0:
                    break
                time.sleep(min(_STEP_S, remaining))
                cancel.check()
            yield Take(
                frames=_pulse(request, k), seed=request.seed + k, info={"backend": self.name}
            )


def _pulse(request: RenderRequest, k: int) -> Frames:
    """``request.frames`` frames: the photo brightened by a looping sine (phase differs per take)."""
    count = max(1, request.frames)
    base = request.image.astype(np.int16)
    amplitude = 6 + 2 * (k % 3)
    frames = np.empty((count, *request.image.shape), dtype=np.uint8)
    for t in range(count):
        delta = round(amplitude * math.sin(2 * math.pi * t / count))
        frames[t] = np.clip(base + delta, 0, 255).astype(np.uint8)
    return frames
