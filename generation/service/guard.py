"""The service's one seam to moderation: every submission and every output passes through here.

Moderation is authoritative in the service (bots may pre-check, the service decides):
``check_request`` (rate limits, prompt policy, consent, NSFW input) before a job is accepted,
and ``check_clips`` (sampled output frames, NSFW) before a finished job is served. Deleted
media is reported to the moderation audit (``record_deletion``), which keeps the record of what
was deleted and why; the media itself is not kept. The ``Moderator`` is thread-safe: these
blocking calls are made from worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from moderation.config import ModerationSettings
from moderation.consent import CONSENT_VERSION, ConsentScope
from moderation.gate import ModerationRequest, Moderator, Requester

FRAMES_PER_CLIP = 4


class Guard:
    def __init__(self, moderator: Moderator) -> None:
        self.moderator = moderator

    @classmethod
    @contextmanager
    def open(cls, settings: ModerationSettings, data_dir: Path) -> Iterator[Guard]:
        with Moderator.open(settings, data_dir) as moderator:
            yield cls(moderator)

    def check_request(
        self, requester: Requester, prompt: str, image: NDArray[np.uint8], consent_attested: bool
    ) -> None:
        """Raise ``ConsentRequired``, ``PolicyRefusal``, ``RateLimited`` or ``UsageError``."""
        self.moderator.check_request(
            ModerationRequest(
                requester=requester, prompt=prompt, image=image, consent_attested=consent_attested
            )
        )

    def check_clips(self, clips: Sequence[Path], requester: Requester) -> None:
        """Sample frames of every clip; raise ``PolicyRefusal`` if any clip is refused."""
        for clip in clips:
            frames = sample_frames(clip, FRAMES_PER_CLIP)
            if frames:
                self.moderator.check_frames(frames, requester)

    def consent_status(self, requester: Requester) -> dict[str, Any]:
        record = self.moderator.consent.status(requester)
        status: dict[str, Any] = {
            "platform": requester.platform,
            "user_id": requester.user_id,
            "consented": record is not None and record.valid,
            "current_wording": CONSENT_VERSION,
            "record": None,
        }
        if record is not None:
            status["record"] = {
                "scope": record.scope.value,
                "wording_version": record.wording_version,
                "recorded_at": record.recorded_at,
                "revoked_at": record.revoked_at,
            }
        return status

    def record_consent(
        self, requester: Requester, wording_version: str, scope: str
    ) -> dict[str, Any]:
        self.moderator.consent.record(
            requester, wording_version or CONSENT_VERSION, ConsentScope.parse(scope)
        )
        return self.consent_status(requester)

    def revoke_consent(self, requester: Requester) -> int:
        """Withdraw consent (audited); returns how many records were revoked."""
        return self.moderator.revoke(requester).records_revoked

    def forget(self, requester: Requester) -> dict[str, int]:
        """Delete consent records and rate state; returns moderation's counts."""
        return dict(self.moderator.forget(requester))

    def record_deletion(
        self, requester: Requester | None, reason: str, counts: Mapping[str, int]
    ) -> None:
        """Audit a media deletion (``requester`` None: a retention sweep)."""
        self.moderator.record_deletion(requester, reason, counts)


def sample_frames(clip: Path, count: int) -> list[NDArray[np.uint8]]:
    """Up to ``count`` evenly spaced RGB frames of a video file (empty if unreadable)."""
    capture = cv2.VideoCapture(str(clip))
    frames: list[NDArray[np.uint8]] = []
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = (
            {round(i * (total - 1) / max(1, count - 1)) for i in range(count)} if total else {0}
        )
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
    return frames
