"""Forgetting users, revoking consent, and the retention sweeper.

Photos and clips are deleted ``retention_hours`` after a job finishes, and at once when a user
is forgotten or revokes consent. Each deletion is recorded in the store's ``deletions`` table
(job id, reason, file count and bytes; never the media or the user's name), so there is an
audit of what was deleted while the media itself is not kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from generation.service.scheduler import Scheduler
from generation.service.store import JobRecord
from moderation.gate import Requester

log = logging.getLogger(__name__)


class Privacy:
    def __init__(self, scheduler: Scheduler, retention_hours: float) -> None:
        self._scheduler = scheduler
        self._store = scheduler.store
        self._media = scheduler.media
        self._retention_s = retention_hours * 3600.0

    async def forget(self, requester: Requester) -> dict[str, Any]:
        """Delete the user's jobs, media and consent records; return what was deleted."""
        jobs = self._store.user_jobs(requester)
        await self._stop(jobs)
        files, size = self._delete_media(jobs, "forget")
        deleted = self._store.delete_jobs([job.id for job in jobs])
        for job in jobs:
            self._scheduler.forget_live(job.id)
        moderation = await asyncio.to_thread(self._scheduler.guard.forget, requester)
        log.info("forgot a user: %d job(s), %d file(s)", deleted, files)
        return {
            "jobs_deleted": deleted,
            "files_deleted": files,
            "bytes_deleted": size,
            "moderation": moderation,
        }

    async def revoke(self, requester: Requester) -> dict[str, Any]:
        """Revoke consent: stop the user's jobs and delete all their media (jobs stay listed)."""
        consent = await asyncio.to_thread(self._scheduler.guard.revoke_consent, requester)
        jobs = self._store.user_jobs(requester)
        await self._stop(jobs)
        files, size = self._delete_media(jobs, "consent_revoked")
        for job in jobs:
            self._scheduler.forget_live(job.id)
        return {
            "consent": consent,
            "jobs_affected": len(jobs),
            "files_deleted": files,
            "bytes_deleted": size,
        }

    def sweep(self, now: float | None = None) -> int:
        """Delete media older than the retention period; returns how many jobs were swept."""
        cutoff = (time.time() if now is None else now) - self._retention_s
        expired = self._store.expired(cutoff)
        self._delete_media(expired, "retention")
        if expired:
            log.info("retention: deleted the media of %d job(s)", len(expired))
        return len(expired)

    async def run_sweeper(self, period_s: float) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(period_s)

    async def _stop(self, jobs: list[JobRecord]) -> None:
        for job in jobs:
            if not job.state.final:
                await self._scheduler.cancel(job)

    def _delete_media(self, jobs: list[JobRecord], reason: str) -> tuple[int, int]:
        files = size = 0
        for job in jobs:
            removed = self._media.delete_job(job.id)
            files, size = files + removed.files, size + removed.bytes
            if not job.media_deleted:
                self._store.mark_media_deleted(job.id)
            self._store.record_deletion(job.id, reason, removed.files, removed.bytes)
        return files, size
