"""The service's one seam to moderation: every submission and every output passes through here.

Moderation is authoritative in the service (bots may pre-check, the service decides):
``check_request`` (rate limits, prompt policy, consent, NSFW input) before a job is accepted,
and ``check_clips`` (sampled output frames, NSFW) before a finished job is served: the frames
of all the job's clips are sampled to a per-job budget (``frame_counts``), decoded only where
sampled, and scored in one detector call. Deleted
media is reported to the moderation audit (``record_deletion``), which keeps the record of what
was deleted and why; the media itself is not kept.

The two checks run on the guard's own pool of ``ModerationSettings.thread_count()`` threads (one
per core by default): at most that many classifier calls run at once and the rest wait in
arrival order. A burst of photos then queues here, in one place, instead of time-slicing the
CPU with every other step of the service (the first photos are answered sooner, memory stays
bounded); the wait for a free thread is part of the moderation time the service records. The
``Moderator`` is thread-safe: the other, short blocking calls come from the loop's default
executor.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from moderation.config import ModerationSettings
from moderation.consent import CONSENT_VERSION, ConsentScope
from moderation.gate import ModerationRequest, Moderator
from moderation.nsfw import NsfwDetector, checked_score
from moderation.requester import Requester

JOB_FRAME_BUDGET = 8  # output frames scored per job, across all of its clips
SECONDS_PER_SAMPLE = 0.5  # one sampled frame per this much clip, up to nsfw_frame_samples


class Guard:
    def __init__(self, moderator: Moderator, executor: Executor) -> None:
        self.moderator = moderator
        self._executor = executor

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: ModerationSettings, data_dir: Path, *, detector: NsfwDetector | None = None
    ) -> AsyncIterator[Guard]:
        """The moderator (``detector``: the one from ``settings`` when None) and its threads."""
        executor = ThreadPoolExecutor(settings.thread_count(), thread_name_prefix="moderation")
        try:
            with Moderator.open(settings, data_dir, detector=detector) as moderator:
                yield cls(moderator, executor)
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    async def check_request(
        self,
        requester: Requester,
        prompt: str,
        image: NDArray[np.uint8],
        consent_attested: bool,
        *,
        shows_person: bool = True,
        image_score: float | None = None,
    ) -> None:
        """Raise ``ConsentRequired``, ``PolicyRefusal``, ``RateLimited`` or ``UsageError``.

        ``shows_person``: the photo shows a human face (consent is checked only then).
        ``image_score``: the photo's NSFW score from ``score_photo`` when already known."""
        request = ModerationRequest(
            requester=requester,
            prompt=prompt,
            image=image,
            consent_attested=consent_attested,
            shows_person=shows_person,
            image_score=image_score,
        )
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self.moderator.check_request, request
        )

    async def score_photo(self, image: NDArray[np.uint8]) -> float:
        """The NSFW detector's score of a sanitised photo (0..1), on the moderation threads:
        what ``check_request`` would compute, for a photo scored before it is submitted."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, checked_score, self.moderator.detector, image
        )

    async def check_clips(
        self, clips: Sequence[Path], requester: Requester, budget: int = JOB_FRAME_BUDGET
    ) -> None:
        """Sample frames of every clip (``frame_counts``) and score them all in one call;
        raise ``PolicyRefusal`` if any sampled frame is over the threshold. ``budget``: frames
        for these clips together (a single take checked as it arrives gets its share)."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(self._check_clips, clips, requester, budget)
        )

    def _check_clips(self, clips: Sequence[Path], requester: Requester, budget: int) -> None:
        infos = [clip_info(clip) for clip in clips]
        counts = frame_counts(infos, self.moderator.settings.nsfw_frame_samples, budget)
        frames: list[NDArray[np.uint8]] = []
        for clip, info, count in zip(clips, infos, counts, strict=True):
            frames.extend(sample_frames(clip, count, total=info[0]))
        if frames:
            self.moderator.check_frames(frames, requester, limit=len(frames))

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
                "language": record.language,
            }
        return status

    def record_consent(
        self, requester: Requester, wording_version: str, scope: str, language: str = "en"
    ) -> dict[str, Any]:
        self.moderator.consent.record(
            requester, wording_version or CONSENT_VERSION, ConsentScope.parse(scope), language
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


def clip_info(clip: Path) -> tuple[int, float]:
    """(frame count, frames per second) of a video file; zeros when unknown or unreadable."""
    capture = cv2.VideoCapture(str(clip))
    try:
        if not capture.isOpened():
            return 0, 0.0
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))), float(
            capture.get(cv2.CAP_PROP_FPS)
        )
    finally:
        capture.release()


def frame_counts(
    infos: Sequence[tuple[int, float]], per_clip_max: int, job_budget: int
) -> list[int]:
    """How many frames to sample from each clip of one job.

    One frame per ``SECONDS_PER_SAMPLE`` of clip, at least 1 and at most ``per_clip_max`` (and
    never more than the clip has); when the job's total would pass ``job_budget``, every clip
    gets an equal share of it, but never fewer than 1: each clip is always checked.
    """
    counts: list[int] = []
    for total, fps in infos:
        if fps > 0 and total > 0:
            wanted = math.ceil(total / fps / SECONDS_PER_SAMPLE)
        else:
            wanted = per_clip_max
        counts.append(max(1, min(wanted, per_clip_max, total or 1)))
    if sum(counts) > job_budget:
        share = max(1, job_budget // max(1, len(counts)))
        counts = [min(count, share) for count in counts]
    return counts


def frame_indices(total: int, count: int) -> list[int]:
    """``count`` frame indices spread over ``total`` frames: the centre of each of ``count``
    equal segments (one frame: the middle one)."""
    if total <= 0 or count <= 0:
        return [0]
    count = min(count, total)
    return sorted({(2 * i + 1) * total // (2 * count) for i in range(count)})


def sample_frames(clip: Path, count: int, total: int | None = None) -> list[NDArray[np.uint8]]:
    """Up to ``count`` spread-out RGB frames of a video file (empty if unreadable).

    Only the sampled frames are retrieved and converted; the others are skipped with ``grab``
    and reading stops after the last sampled one. ``total`` is the clip's frame count when the
    caller already knows it.
    """
    capture = cv2.VideoCapture(str(clip))
    frames: list[NDArray[np.uint8]] = []
    try:
        if total is None:
            total = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        wanted = set(frame_indices(total, count))
        last = max(wanted)
        for index in range(last + 1):
            if not capture.grab():
                break
            if index in wanted:
                ok, frame = capture.retrieve()
                if ok:
                    frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.uint8))
    finally:
        capture.release()
    return frames
