"""Forgetting users, revoking consent, and the retention sweeper.

Photos and clips are deleted ``retention_hours`` after a job finishes, and at once when a user
is forgotten or revokes consent. Each deletion is reported to the moderation audit (reason and
counts, under a pseudonym; never the media), so there is a record of what was deleted while
the media itself is not kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from generation.service.scheduler import Scheduler
from generation.service.store import JobRecord
from moderation.requester import Requester

log = logging.getLogger(__name__)


class Privacy:
    def __init__(self, scheduler: Scheduler, retention_hours: float) -> None:
        self._scheduler = scheduler
        self._store = scheduler.store
        self._media = scheduler.media
        self._guard = scheduler.guard
        self._retention_s = retention_hours * 3600.0

    async def forget(self, requester: Requester) -> dict[str, Any]:
        """Delete the user's jobs, media and consent records; return what was deleted."""
        moderation = await asyncio.to_thread(self._guard.forget, requester)
        jobs = self._store.user_jobs(requester)
        await self._stop(jobs)
        files, size = self._delete_media(jobs)
        deleted = self._store.delete_jobs([job.id for job in jobs])
        for job in jobs:
            self._scheduler.forget_live(job.id)
        counts = {"jobs": deleted, "media_files": files, "media_bytes": size}
        await asyncio.to_thread(self._guard.record_deletion, requester, "forget", counts)
        log.info("forgot a user: %d job(s), %d file(s)", deleted, files)
        return {
            "jobs_deleted": deleted,
            "files_deleted": files,
            "bytes_deleted": size,
            "moderation": moderation,
        }

    async def revoke(self, requester: Requester) -> dict[str, Any]:
        """Revoke consent: stop the user's jobs and delete all their media (jobs stay listed)."""
        revoked = await asyncio.to_thread(self._guard.revoke_consent, requester)
        jobs = self._store.user_jobs(requester)
        await self._stop(jobs)
        files, size = self._delete_media(jobs)
        for job in jobs:
            self._scheduler.forget_live(job.id)
        counts = {"jobs": len(jobs), "media_files": files, "media_bytes": size}
        await asyncio.to_thread(self._guard.record_deletion, requester, "revoke", counts)
        status = await asyncio.to_thread(self._guard.consent_status, requester)
        return {
            **status,
            "records_revoked": revoked,
            "jobs_affected": len(jobs),
            "files_deleted": files,
            "bytes_deleted": size,
        }

    def sweep(self, now: float | None = None) -> int:
        """Delete media older than the retention period, then orphaned media; returns how many
        jobs' media were deleted (both kinds)."""
        cutoff = (time.time() if now is None else now) - self._retention_s
        expired = self._store.expired(cutoff)
        if expired:
            files, size = self._delete_media(expired)
            counts = {"jobs": len(expired), "media_files": files, "media_bytes": size}
            self._guard.record_deletion(None, "retention", counts)
            log.info("retention: deleted the media of %d job(s)", len(expired))
        return len(expired) + self.sweep_orphans()

    def sweep_orphans(self) -> int:
        """Delete job directories that no job keeps: a service killed between storing a photo
        and recording its job, or a worker that wrote into a job forgotten meanwhile. Runs
        synchronously on the event loop, so no submission of this service is half done (a photo
        is stored and its job recorded with no ``await`` between); one service owns a data dir.
        Returns how many directories were deleted."""
        orphans = sorted(self._media.job_ids() - self._store.keeping_media())
        if not orphans:
            return 0
        files = size = 0
        for job_id in orphans:
            removed = self._media.delete_job(job_id)
            files, size = files + removed.files, size + removed.bytes
        counts = {"jobs": len(orphans), "media_files": files, "media_bytes": size}
        self._guard.record_deletion(None, "orphaned", counts)
        log.warning("deleted %d orphaned media director(ies) that no job keeps", len(orphans))
        return len(orphans)

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

    def _delete_media(self, jobs: list[JobRecord]) -> tuple[int, int]:
        files = size = 0
        for job in jobs:
            removed = self._media.delete_job(job.id)
            files, size = files + removed.files, size + removed.bytes
            if not job.media_deleted:
                self._store.mark_media_deleted(job.id)
        return files, size
