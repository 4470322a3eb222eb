"""``sleep``: a real backend of fixed duration, for tests and the service load benchmark.

It takes ``seconds`` per render whatever the request, reports progress in small steps, honours
cancellation between steps, and returns valid frames: the photo with a gentle brightness pulse
that loops (the first and last frames match), one take per requested variation.
"""

from __future__ import annotations

import math
import time

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
        cancel.check()
        deadline = time.monotonic() + self.seconds
        while True:
            remaining = deadline - time.monotonic()
            done = 1.0 - remaining / self.seconds if self.seconds > 0 else 1.0
            progress(min(1.0, max(0.0, done)), "sleeping")
            if remaining <= 0:
                break
            time.sleep(min(_STEP_S, remaining))
            cancel.check()
        return [
            Take(frames=_pulse(request, k), seed=request.seed + k, info={"backend": self.name})
            for k in range(request.variations)
        ]


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
