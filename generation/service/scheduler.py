"""The scheduler: accepts jobs, keeps the fair bounded line, hands jobs to the queue, records
what workers report, and tells watchers (SSE) about every change.

It is the only writer of the job store. On submission, in this order: the same idempotency key
returns the same job; a full line of waiting jobs (``max_queue``) or a user with
``max_inflight_per_user`` jobs queued or running gets ``RateLimited`` (429 with
``Retry-After``); then intake (``moderation.intake``, off the event loop) and moderation (the
guard's own threads: rate limits, policy, consent, NSFW) decide; the sanitised photo is stored
and the job joins the line. Finished clips are checked by moderation again before they are served.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from generation.config import ServiceSettings
from generation.restore import DamageReport, analyse
from generation.service.errors import Gone
from generation.service.fairness import UserKey, fair_order, user_key
from generation.service.guard import JOB_FRAME_BUDGET, Guard
from generation.service.inspect_route import Prechecks, SubjectService
from generation.service.jobs import (
    ADJUST_SCALE,
    MAX_MOTION_SCALE,
    MIN_MOTION_SCALE,
    Adjust,
    EventKind,
    JobState,
    JobTicket,
    RenderOptions,
    TakeRecord,
    WorkerEvent,
    new_job_id,
)
from generation.service.media import MediaStore, encode_png
from generation.service.metrics import Metrics
from generation.service.queue import JobQueue, QueueUnavailable, TransportNotice
from generation.service.store import JobRecord, JobStore
from generation.service.submission import Submission
from generation.service.tasks import reraise_if_cancelling, stop_tasks
from generation.subject import Subject
from livingphoto.errors import ConsentRequired, PolicyRefusal, RateLimited, UsageError
from moderation.config import ModerationSettings
from moderation.intake import load_image
from moderation.requester import Requester

log = logging.getLogger(__name__)

_TICK_S = 0.25
_DEFAULT_JOB_S = 20.0


@dataclass(frozen=True)
class Accepted:
    job: JobRecord
    created: bool  # False: an earlier job with the same idempotency key


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        media: MediaStore,
        queue: JobQueue,
        guard: Guard,
        settings: ServiceSettings,
        moderation: ModerationSettings,
        metrics: Metrics,
        subjects: SubjectService | None = None,
    ) -> None:
        self.store = store
        # Finds human faces: consent is asked only for them (None: always ask).
        self.subjects = subjects
        self.media = media
        self.queue = queue
        self.guard = guard
        self.settings = settings
        self.moderation = moderation
        self.metrics = metrics
        self._live: dict[str, tuple[float, str]] = {}
        # Takes of running jobs that passed their output check, by job and index (progressive
        # delivery: listed in the job view and downloadable before the job is done).
        self._takes: dict[str, dict[int, TakeRecord]] = {}
        self._outstanding: set[str] = set()
        self._cancel_requested: set[str] = set()
        self._last_served: dict[UserKey, int] = {}
        self._served = 0
        self._positions: dict[str, int] | None = None
        self._watchers: dict[str, set[asyncio.Queue[None]]] = {}
        self._pump_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._resend: set[str] = set()  # handed-over jobs the transport lost, to send again
        self._completing: dict[str, str] = {}  # job id -> run dir whose clips are checked
        # job id -> take path -> the check of that take's clip, started when the take arrived
        self._take_checks: dict[str, dict[str, asyncio.Task[None]]] = {}
        # What the photo of a job accepted by this process shows (found at submission, so the
        # worker need not search it again); kept until the job is final.
        # What the service found in each accepted photo (its subject, its old-scan check),
        # handed to the worker with the job.
        self._subjects: dict[str, Subject] = {}
        self._damage: dict[str, DamageReport] = {}

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        store: JobStore,
        media: MediaStore,
        queue: JobQueue,
        guard: Guard,
        settings: ServiceSettings,
        moderation: ModerationSettings,
        metrics: Metrics,
        subjects: SubjectService | None = None,
    ) -> AsyncIterator[Scheduler]:
        scheduler = cls(store, media, queue, guard, settings, moderation, metrics, subjects)
        requeued = store.recover(requeue_dispatched=not settings.uses_redis)
        if requeued:
            log.info("recovered %d unfinished job(s) after a restart", requeued)
        followed = [job.id for job in store.dispatched_active()]
        scheduler._outstanding.update(followed)
        await queue.follow(followed)
        tasks = [
            asyncio.create_task(scheduler._consume(), name="scheduler-events"),
            asyncio.create_task(scheduler._tick(), name="scheduler-tick"),
        ]
        try:
            await scheduler.pump()
            yield scheduler
        finally:
            await stop_tasks([*tasks, *scheduler._background])

    # -- submission -------------------------------------------------------------------------

    async def submit(self, sub: Submission, image_bytes: bytes | None) -> Accepted:
        if sub.idempotency_key:
            existing = self.store.by_idempotency_key(sub.requester, sub.idempotency_key)
            if existing is not None:
                return Accepted(existing, created=False)
        parent = self._parent(sub)
        if image_bytes is None and parent is None:
            raise UsageError("missing image: send the photo as the multipart part 'image'")
        source = image_bytes if image_bytes is not None else self._parent_photo(parent)
        self._check_capacity(sub.requester)
        prompt = sub.prompt if sub.prompt is not None else parent.prompt if parent else ""
        rgb = await asyncio.to_thread(self._intake, source)
        # The PNG that is stored if the job is accepted is made beside the moderation check.
        png = (
            asyncio.ensure_future(asyncio.to_thread(encode_png, rgb))
            if image_bytes is not None
            else None
        )
        if png is not None:
            png.add_done_callback(_observed)
        shows_person = True
        subject: Subject | None = None
        prechecks: Prechecks | None = None
        if self.subjects is not None:
            face = sub.face if sub.face is not None else parent.options.face if parent else None
            subject = await self.subjects.describe(rgb, face, photo=source)
            shows_person = subject.kind == "face"
            prechecks = self.subjects.prechecks_of(source)
        moderation_started = time.perf_counter()
        # The photo's NSFW score and the old-scan check the worker needs first (~40 ms for a
        # 512 px photo) were started when the photo was inspected; else the check runs here,
        # beside the moderation check, off the job's own time.
        damage = prechecks.damage if prechecks is not None else self._start_analyse(rgb)
        image_score: float | None = None
        if prechecks is not None:
            with suppress(Exception):  # not scored after all: the moderation check scores it
                image_score = await asyncio.shield(prechecks.score)
        try:
            await self.guard.check_request(
                sub.requester,
                prompt,
                rgb,
                sub.consent_attested,
                shows_person=shows_person,
                image_score=image_score,
            )
        except ConsentRequired:
            self.metrics.refused("consent_required")
            raise
        except PolicyRefusal as refusal:
            self.metrics.refused(refusal.category)
            raise
        except RateLimited:
            self.metrics.refused("rate_limited")
            raise
        moderation_s = time.perf_counter() - moderation_started
        self._check_capacity(sub.requester)  # again: no await from here to the insert
        job = dataclasses.replace(
            self._new_job(sub, prompt, parent, await png if png is not None else None),
            moderation_s=round(moderation_s, 4),
        )
        try:
            self.store.insert(job)
        except BaseException as error:
            self.media.delete_job(job.id)  # a photo no job records must not stay on disk
            if not isinstance(error, sqlite3.IntegrityError):
                raise
            existing = self.store.by_idempotency_key(sub.requester, sub.idempotency_key or "")
            if existing is None:
                raise
            return Accepted(existing, created=False)
        self.metrics.submitted += 1
        if subject is not None:
            self._subjects[job.id] = subject  # goes to the worker with the job
        with suppress(Exception):  # without it the worker checks the photo itself
            self._damage[job.id] = await asyncio.shield(damage)
        log.info("job accepted", extra={"job_id": job.id})
        self._positions = None
        try:
            await self.pump()
        except QueueUnavailable:  # the job is stored; the periodic tick dispatches it later
            pass
        except Exception:
            reraise_if_cancelling()
            log.warning("could not dispatch yet", exc_info=True, extra={"job_id": job.id})
        return Accepted(self.store.get(job.id) or job, created=True)

    def _intake(self, photo: bytes) -> NDArray[np.uint8]:
        """Decode and check the photo (``moderation.intake``, blocking)."""
        return load_image(
            photo,
            max_bytes=self.moderation.max_image_bytes,
            max_pixels=self.moderation.max_image_pixels,
        ).rgb

    def _start_analyse(self, rgb: NDArray[np.uint8]) -> asyncio.Future[DamageReport]:
        """The old-scan check of a photo (``generation.restore.analyse``) on a thread."""
        damage = asyncio.ensure_future(asyncio.to_thread(analyse, rgb))
        damage.add_done_callback(_observed)
        return damage

    def prechecks(self, rgb: NDArray[np.uint8]) -> Prechecks:
        """Start what a submission of this (inspected) photo needs: its NSFW score on the
        moderation threads and its old-scan check (``inspect_route.Prechecks``)."""
        score = asyncio.ensure_future(self.guard.score_photo(rgb))
        score.add_done_callback(_observed)
        return Prechecks(score=score, damage=self._start_analyse(rgb))

    def _parent(self, sub: Submission) -> JobRecord | None:
        if sub.parent is None:
            return None
        parent = self.store.get(sub.parent.job_id)
        if parent is None or user_key(parent) != (sub.requester.platform, sub.requester.user_id):
            raise UsageError("parent job not found for this requester")
        return parent

    def _parent_photo(self, parent: JobRecord | None) -> bytes:
        if parent is None or parent.media_deleted:
            raise Gone("the parent job's photo was deleted: send the photo again")
        try:
            return self.media.resolve(parent.input_path).read_bytes()
        except FileNotFoundError:
            raise Gone("the parent job's photo was deleted: send the photo again") from None

    def _new_job(
        self,
        sub: Submission,
        prompt: str,
        parent: JobRecord | None,
        png: bytes | None,
    ) -> JobRecord:
        base = parent.options if parent else RenderOptions()
        seed = sub.seed
        scale = base.motion_scale
        adjust = sub.parent.adjust if sub.parent else None
        variation = sub.parent.variation if sub.parent else None
        if parent is not None and adjust is not None:
            scale = min(MAX_MOTION_SCALE, max(MIN_MOTION_SCALE, scale * ADJUST_SCALE[adjust]))
            if seed is None:
                seed = self._adjusted_seed(parent, adjust, variation)
        if sub.motion_scale is not None:
            scale = sub.motion_scale
        options = RenderOptions(
            variations=sub.variations or base.variations,
            seconds=sub.seconds or base.seconds,
            fps=sub.fps or base.fps,
            size=sub.size or base.size,
            seed=seed,
            motion_scale=round(scale, 4),
            face=sub.face if sub.face is not None else base.face,
        )
        job_id = new_job_id()
        if png is not None:
            input_path = self.media.write_input(job_id, png)
        else:
            assert parent is not None
            input_path = self.media.copy_input(parent.input_path, job_id)
        return JobRecord(
            id=job_id,
            state=JobState.QUEUED,
            requester=sub.requester,
            prompt=prompt,
            options=options,
            input_path=input_path,
            created_at=time.time(),
            parent_id=parent.id if parent else None,
            parent_variation=variation,
            adjust=adjust,
            idempotency_key=sub.idempotency_key,
        )

    def _adjusted_seed(self, parent: JobRecord, adjust: Adjust, variation: int | None) -> int:
        """less/more keep the chosen take's seed; reroll/vary draw new ones."""
        if adjust in (Adjust.LESS, Adjust.MORE):
            takes = self.store.variations(parent.id)
            chosen = [v for v in takes if v.index == variation] or sorted(
                takes, key=lambda v: v.rank
            )
            if chosen:
                return chosen[0].seed
            if parent.options.seed is not None:
                return parent.options.seed
        return secrets.randbelow(2**31 - 1)

    def _check_capacity(self, requester: Requester) -> None:
        waiting = self.store.count_waiting()
        if waiting >= self.settings.max_queue:
            self.metrics.refused("queue_full")
            raise RateLimited("the queue is full, try again later", self.retry_after(waiting))
        if self.store.count_active(requester) >= self.settings.max_inflight_per_user:
            self.metrics.refused("user_limit")
            raise RateLimited(
                f"you already have {self.settings.max_inflight_per_user} jobs in progress",
                self.retry_after(1),
            )

    def retry_after(self, jobs_ahead: int) -> float:
        mean = self.metrics.mean_generation_s or _DEFAULT_JOB_S
        estimate = mean * (jobs_ahead + 1) / max(1, self.settings.workers)
        return float(min(600, max(1, round(estimate))))

    # -- cancellation -----------------------------------------------------------------------

    async def cancel(self, job: JobRecord) -> JobRecord:
        """Cancel a job; a running one stops at its next cancellation check."""
        if job.state.final:
            return job
        if not job.dispatched:
            self._finish(job.id, JobState.CANCELLED, "cancelled")
            return self.store.get(job.id) or job
        self._cancel_requested.add(job.id)
        with suppress(QueueUnavailable):  # asked again when the transport is back
            await self.queue.cancel(job.id)
        self._notify(job.id)
        return job

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel_requested

    # -- dispatch ---------------------------------------------------------------------------

    async def pump(self) -> None:
        """Hand waiting jobs to the queue while it has free slots, in fair order."""
        async with self._pump_lock:
            free = await self.queue.free_slots(len(self._outstanding))
            if free <= 0:
                return
            started: list[JobRecord] = []
            try:
                for job in fair_order(self.store.waiting(), self._last_served)[:free]:
                    self._outstanding.add(job.id)
                    try:
                        await self.queue.submit(self._ticket(job))
                    except BaseException:
                        self._outstanding.discard(job.id)  # still waiting: retried later
                        raise
                    self.store.mark_dispatched(job.id, time.time())
                    self._served += 1
                    self._last_served[user_key(job)] = self._served
                    started.append(job)
            finally:
                if started:
                    self._positions = None
                    for job in started:
                        self._notify(job.id)
                    self._notify_waiting()

    def _ticket(self, job: JobRecord) -> JobTicket:
        subject, damage = self._subjects.get(job.id), self._damage.get(job.id)
        return JobTicket(
            job_id=job.id,
            prompt=job.prompt,
            options=job.options,
            input_path=job.input_path,
            timeout_s=self.settings.job_timeout_s,
            subject=None if subject is None else subject.to_record(),
            damage=None if damage is None else damage.to_record(),
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK_S)
            reraise_if_cancelling()
            try:
                await self._send_again()
                await self.pump()
            except QueueUnavailable:
                pass  # the queue reports the outage (health, logs); jobs wait in the store
            except Exception:
                reraise_if_cancelling()
                log.exception("dispatch failed; retrying")

    async def _consume(self) -> None:
        while True:
            event = await self.queue.next_event()
            reraise_if_cancelling()
            try:
                if isinstance(event, TransportNotice):
                    await self._on_notice(event)
                else:
                    self._on_event(event)
            except QueueUnavailable:
                pass  # retried by the tick
            except Exception:
                reraise_if_cancelling()
                log.exception("could not record a queue event")

    async def _on_notice(self, notice: TransportNotice) -> None:
        """The transport went down, came back, or lost handed-over jobs (the store is the
        record: those are sent again from it, once, and their watchers are told)."""
        for job_id in notice.resend:
            job = self.store.get(job_id)
            if job is not None and not job.state.final and job.dispatched:
                self._resend.add(job_id)
                self._live[job_id] = (0.0, "requeued: the queue lost this job; it runs again")
        for job_id in list(self._watchers):
            self._notify(job_id)
        if not notice.up:
            return
        for job_id in list(self._cancel_requested):  # cancel keys may be lost too
            await self.queue.cancel(job_id)
        await self._send_again()
        await self.pump()

    async def _send_again(self) -> None:
        """Send the jobs in ``_resend`` again (QueueUnavailable leaves the rest for later)."""
        if not self._resend:
            return
        async with self._pump_lock:
            for job_id in sorted(self._resend):
                job = self.store.get(job_id)
                if job is not None and not job.state.final and job.dispatched:
                    await self.queue.submit(self._ticket(job))
                    log.info("job sent again", extra={"job_id": job_id})
                self._resend.discard(job_id)

    def _on_event(self, event: WorkerEvent) -> None:
        job = self.store.get(event.job_id)
        if job is None or job.state.final:
            self._outstanding.discard(event.job_id)
            if event.kind.final:
                self._discard_late_result(job, event)
            return
        if event.kind.final and job.id in self._completing:
            # A second copy's report (the job was sent again after Redis lost it) while the
            # first copy's clips are being checked: the first one counts. (The same report
            # read twice names the same run directory: nothing to delete then.)
            if event.result is not None and event.result.run_dir != self._completing[job.id]:
                self._discard_late_result(job, event)
            return
        if event.kind in (EventKind.STARTED, EventKind.PROGRESS):
            if job.state is JobState.QUEUED or event.kind is EventKind.STARTED:
                self.store.mark_running(job.id, event.delivery, time.time())
            if event.kind is EventKind.STARTED:
                self._takes.pop(job.id, None)  # a new attempt makes new takes
                self._take_checks.pop(job.id, None)
            self._live[job.id] = (event.progress, event.stage or event.kind.value)
            self._notify(job.id)
        elif event.kind is EventKind.TAKE:
            if event.take is not None:
                budget = max(1, JOB_FRAME_BUDGET // max(1, job.options.variations))
                clip = self.media.resolve(event.take.path)
                check = asyncio.create_task(self.guard.check_clips([clip], job.requester, budget))
                check.add_done_callback(_observed)
                self._background.add(check)
                check.add_done_callback(self._background.discard)
                self._take_checks.setdefault(job.id, {})[event.take.path] = check
                task = asyncio.create_task(self._publish_take(job, event.take, check))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        elif event.kind is EventKind.DONE:
            self._completing[job.id] = event.result.run_dir if event.result else ""
            task = asyncio.create_task(self._complete(job, event))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif event.kind is EventKind.CANCELLED:
            self._finish(job.id, JobState.CANCELLED, "cancelled")
        else:
            self._finish(job.id, JobState.FAILED, event.error or "generation failed")

    def _discard_late_result(self, job: JobRecord | None, event: WorkerEvent) -> None:
        """A late report for a job that is gone or already final: its files must not linger."""
        if job is None:
            self.media.delete_job(event.job_id)
        elif event.result is not None and job.run_dir != event.result.run_dir:
            with suppress(ValueError):
                self.media.delete_run(self.media.resolve(event.result.run_dir))

    async def _publish_take(
        self, job: JobRecord, take: TakeRecord, check: asyncio.Task[None]
    ) -> None:
        """List one finished take in the job view once ``check`` (its frames, its share of the
        job's frame budget) passed; a take that fails it stays unlisted (the final check of
        the whole job awaits the same check and refuses the job)."""
        checked_at = time.perf_counter()
        try:
            await asyncio.shield(check)
        except Exception:  # refused, unreadable or broken: the final check deals with it
            reraise_if_cancelling()
            return
        finally:
            self.store.add_moderation_time(job.id, round(time.perf_counter() - checked_at, 4))
        current = self.store.get(job.id)
        if current is None or current.state is not JobState.RUNNING or current.media_deleted:
            return
        self._takes.setdefault(job.id, {})[take.index] = take
        self._notify(job.id)

    def take(self, job_id: str, index: int) -> TakeRecord | None:
        """A checked take of a running job, or None."""
        return self._takes.get(job_id, {}).get(index)

    async def _complete(self, job: JobRecord, event: WorkerEvent) -> None:
        try:
            await self._check_and_record(job, event)
        except Exception:
            reraise_if_cancelling()
            # A job is never left running: a check that broke fails it, with the cause logged.
            log.exception("checking the output failed", extra={"job_id": job.id})
            self._finish(job.id, JobState.FAILED, "checking the output failed")
        finally:
            self._completing.pop(job.id, None)

    async def _check_and_record(self, job: JobRecord, event: WorkerEvent) -> None:
        result = event.result
        assert result is not None
        current = self.store.get(job.id)
        if current is None or current.media_deleted:
            # Forgotten or consent revoked while it ran: keep nothing.
            self.media.delete_job(job.id)
            self._finish(job.id, JobState.CANCELLED, "cancelled: the media was deleted")
            return
        # A take checked (or being checked) as it arrived is not checked twice: its check is
        # awaited, and only a check that could not read the clip is made again here.
        takes = self._take_checks.get(job.id, {})
        clips = [self.media.resolve(v.path) for v in result.variations if v.path not in takes]
        self._live[job.id] = (1.0, "checking output")
        self._notify(job.id)
        checked_at = time.perf_counter()
        try:
            for path, check in list(takes.items()):
                try:
                    await asyncio.shield(check)
                except (UsageError, ValueError):
                    clips.append(self.media.resolve(path))
            if clips:
                await self.guard.check_clips(clips, job.requester)
        except PolicyRefusal as refusal:
            self.metrics.refused(refusal.category)
            self.media.prune_runs(job.id, keep=None)
            self._finish(job.id, JobState.REFUSED, str(refusal), refusal.category)
            return
        finally:
            self.store.add_moderation_time(job.id, round(time.perf_counter() - checked_at, 4))
        if self.store.finish_done(job.id, result, time.time()):
            self.metrics.observe_generation(result.generation_s)
            self.metrics.finished[JobState.DONE.value] += 1
            self.media.prune_runs(job.id, keep=result.run_dir)
            log.info("job done", extra={"job_id": job.id})
        else:  # finished meanwhile (cancelled, forgotten): this run's clips must not linger
            self._discard_late_result(self.store.get(job.id), event)
        self._settle(job.id)

    def _finish(self, job_id: str, state: JobState, error: str, category: str = "") -> None:
        if self.store.finish(job_id, state, time.time(), error, category):
            self.metrics.finished[state.value] += 1
            self.media.prune_runs(job_id, keep=None)  # attempts that died left directories
            log.info("job %s", state.value, extra={"job_id": job_id})
        self._settle(job_id)

    def _settle(self, job_id: str) -> None:
        self._subjects.pop(job_id, None)
        self._damage.pop(job_id, None)
        self._take_checks.pop(job_id, None)
        self._outstanding.discard(job_id)
        self._resend.discard(job_id)
        self._cancel_requested.discard(job_id)
        self._live.pop(job_id, None)
        self._takes.pop(job_id, None)
        self._positions = None
        self._notify(job_id)
        self._notify_waiting()
        task = asyncio.create_task(self._pump_in_background())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _pump_in_background(self) -> None:
        try:
            await self.pump()
        except QueueUnavailable:
            pass  # the periodic tick tries again
        except Exception:
            reraise_if_cancelling()
            log.exception("dispatch failed; retrying")

    # -- views and watchers -----------------------------------------------------------------

    def position(self, job: JobRecord) -> int:
        """1-based place in line of a waiting job; 0 once handed to a worker or finished."""
        if job.state is not JobState.QUEUED or job.dispatched:
            return 0
        if self._positions is None:
            order = fair_order(self.store.waiting(), self._last_served)
            self._positions = {j.id: i + 1 for i, j in enumerate(order)}
        return self._positions.get(job.id, 0)

    def view(self, job: JobRecord) -> dict[str, Any]:
        """The job object of the HTTP API (DESIGN.md section 3)."""
        progress, stage = self._live.get(job.id, (0.0, ""))
        if job.state is JobState.DONE:
            progress, stage = 1.0, "done"
        elif not job.state.final and not self.queue.health().up:
            stage = "waiting for the queue: Redis is unreachable, the job continues when it is back"
        variations = (
            [
                {
                    "index": v.index,
                    "url": f"/v1/jobs/{job.id}/variations/{v.index}",
                    "seed": v.seed,
                    "rank": v.rank,
                    "scores": v.scores,
                    "combined": v.combined,
                    "flagged": v.flagged,
                }
                for v in self.store.variations(job.id)
            ]
            if job.state is JobState.DONE and not job.media_deleted
            else self._running_takes(job)
        )
        return {
            "job_id": job.id,
            "state": job.state.value,
            "position": self.position(job),
            "progress": round(progress, 4),
            "stage": stage or job.state.value,
            "variations": variations,
            "error": job.error or None,
            "category": job.category or None,
            "cancel_requested": job.id in self._cancel_requested,
            "prompt": job.prompt,
            "options": job.options.to_json(),
            "parent": (
                {
                    "job_id": job.parent_id,
                    "variation": job.parent_variation,
                    "adjust": job.adjust.value if job.adjust else None,
                }
                if job.parent_id
                else None
            ),
            "attempts": job.attempts,
            "created_at": job.created_at,
            "dispatched_at": job.dispatched_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "generation_s": job.generation_s,
            "moderation_s": job.moderation_s,
            "warnings": list(job.warnings),
            "media_deleted": job.media_deleted,
        }

    def _running_takes(self, job: JobRecord) -> list[dict[str, Any]]:
        """Finished takes of a running job, in order: 1..k without gaps, so that clients see
        take 1 first even when take 2's output check ends sooner (rank and flag come once every
        take is in)."""
        if job.state is not JobState.RUNNING or job.media_deleted:
            return []
        takes = self._takes.get(job.id, {})
        listed: list[dict[str, Any]] = []
        while (take := takes.get(len(listed) + 1)) is not None:
            listed.append(
                {
                    "index": take.index,
                    "url": f"/v1/jobs/{job.id}/variations/{take.index}",
                    "seed": take.seed,
                    "scores": take.scores,
                }
            )
        return listed

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Queue[None]]:
        """A queue that receives ``None`` whenever the job may have changed (coalesced)."""
        signal: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._watchers.setdefault(job_id, set()).add(signal)
        try:
            yield signal
        finally:
            watchers = self._watchers.get(job_id)
            if watchers is not None:
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[job_id]

    def _notify(self, job_id: str) -> None:
        for signal in self._watchers.get(job_id, ()):
            with suppress(asyncio.QueueFull):
                signal.put_nowait(None)

    def _notify_waiting(self) -> None:
        """Wake the watchers of jobs still in line (their position may have moved); a job
        already handed to a worker is woken by its own events only."""
        for job_id in list(self._watchers):
            if job_id not in self._outstanding:
                self._notify(job_id)

    def forget_live(self, job_id: str) -> None:
        """Drop in-memory state of a deleted job and wake its watchers."""
        self._subjects.pop(job_id, None)
        self._damage.pop(job_id, None)
        self._take_checks.pop(job_id, None)
        self._live.pop(job_id, None)
        self._takes.pop(job_id, None)
        self._outstanding.discard(job_id)
        self._resend.discard(job_id)
        self._cancel_requested.discard(job_id)
        self._positions = None
        self._notify(job_id)


def _observed(check: asyncio.Future[Any]) -> None:
    """Mark a background check's outcome as seen (its awaiters handle it; a job settled or
    refused before awaiting it must not log "exception was never retrieved")."""
    if not check.cancelled():
        check.exception()
