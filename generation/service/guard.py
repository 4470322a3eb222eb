"""The service's one seam to moderation: every submission and every output passes through here.

Moderation is authoritative in the service (bots may pre-check, the service decides):
``check_request`` (consent, prompt/image policy, rate limits, NSFW input) before a job is
accepted, and ``check_clips`` (sampled output frames, NSFW) before a finished job is served.
Calls into the ``Moderator`` are serialised by a lock and made from worker threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from moderation.config import ModerationSettings
from moderation.gate import ModerationRequest, Moderator, Requester

FRAMES_PER_CLIP = 4


class Guard:
    def __init__(self, moderator: Moderator) -> None:
        self._moderator = moderator
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def open(cls, settings: ModerationSettings, data_dir: Path) -> Iterator[Guard]:
        with Moderator.open(settings, data_dir) as moderator:
            yield cls(moderator)

    def check_request(
        self, requester: Requester, prompt: str, image: NDArray[np.uint8], consent_attested: bool
    ) -> None:
        """Raise ``ConsentRequired``, ``PolicyRefusal`` or ``RateLimited``; blocking."""
        request = ModerationRequest(
            requester=requester, prompt=prompt, image=image, consent_attested=consent_attested
        )
        with self._lock:
            self._moderator.check_request(request)

    def check_clips(self, clips: Sequence[Path], requester: Requester) -> None:
        """Sample frames of every clip and raise ``PolicyRefusal`` if any is refused; blocking."""
        for clip in clips:
            frames = sample_frames(clip, FRAMES_PER_CLIP)
            if len(frames):
                with self._lock:
                    self._moderator.check_frames(frames, requester)

    def record_consent(self, requester: Requester, wording_version: str) -> dict[str, Any]:
        with self._lock:
            self._moderator.consent.record(requester, wording_version)
            return self._status(requester)

    def revoke_consent(self, requester: Requester) -> dict[str, Any]:
        with self._lock:
            self._moderator.consent.revoke(requester)
            return self._status(requester)

    def consent_status(self, requester: Requester) -> dict[str, Any]:
        with self._lock:
            return self._status(requester)

    def forget(self, requester: Requester) -> dict[str, Any]:
        with self._lock:
            return as_json(self._moderator.forget(requester))

    def _status(self, requester: Requester) -> dict[str, Any]:
        status = self._moderator.consent.status(requester)
        if isinstance(status, bool):
            return {"consented": status}
        return as_json(status)


def as_json(value: object) -> dict[str, Any]:
    """A moderation result as a JSON object (dataclass fields, a dict, or a bare value)."""
    if value is None:
        return {}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return {"result": _plain(value)}


def _plain(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def sample_frames(clip: Path, count: int) -> NDArray[np.uint8]:
    """Up to ``count`` evenly spaced RGB frames of a video file, shape (N, H, W, 3)."""
    capture = cv2.VideoCapture(str(clip))
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = (
            {round(i * (total - 1) / max(1, count - 1)) for i in range(count)} if total else {0}
        )
        frames: list[NDArray[np.uint8]] = []
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.uint8))
            index += 1
    finally:
        capture.release()
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)
