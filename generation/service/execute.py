"""Running one job: the single seam between the job queues and ``generation.animator``.

Both queues (the embedded worker and the Redis worker) call ``run_job``: it reads the photo from
the shared data directory, runs ``Animator.animate`` in a thread into a fresh ``run-*``
directory, relays progress to the event loop, enforces the job's time limit through the
``CancelToken``, and turns the outcome into exactly one final ``WorkerEvent``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor

from generation.animator import AnimateOptions, Animator, FinishedTake, Inspection, TakeFn
from generation.backend import Backend, CancelToken
from generation.restore import DamageReport
from generation.service.jobs import (
    EventKind,
    JobTicket,
    RunResult,
    TakeRecord,
    VariationRecord,
    WorkerEvent,
)
from generation.service.media import MediaStore
from generation.subject import Subject
from livingphoto.errors import Cancelled, LivingPhotoError
from moderation.intake import load_image

log = logging.getLogger(__name__)

# Progress is relayed when it moved this much, the stage changed, or this long passed.
_PROGRESS_STEP = 0.02
_PROGRESS_PERIOD_S = 0.25

EmitFn = Callable[[WorkerEvent], None]


class JobRunner:
    """Owns one ``Animator`` (set up once per process) and runs tickets with it."""

    def __init__(self, backend: Backend, media: MediaStore) -> None:
        self._animator = Animator(backend)
        self.backend_name = backend.name
        self.media = media

    def setup(self) -> None:
        """Load the backend and every face model once, before the first job."""
        self._animator.setup(everything=True)

    def _inspection(self, ticket: JobTicket, photo: bytes) -> Inspection | None:
        """The photo with the subject (and the old-scan check) the service made when it
        accepted the job, or None (the animator then searches the photo itself) when the ticket
        carries no subject or a bad one; without a usable check, the animator makes it."""
        if ticket.subject is None:
            return None
        try:
            subject = Subject.from_record(ticket.subject)
        except (KeyError, TypeError, ValueError) as error:
            log.warning("ignored the job's subject (%s): searching the photo", error)
            return None
        damage: DamageReport | None = None
        if ticket.damage is not None:
            try:
                damage = DamageReport.from_record(ticket.damage)
            except (KeyError, TypeError, ValueError) as error:
                log.warning("ignored the job's old-scan check (%s): checking again", error)
        image = load_image(
            photo,
            max_bytes=self._animator.max_image_bytes,
            max_pixels=self._animator.max_image_pixels,
        )
        return Inspection.of(image, subject, damage)

    def run_blocking(
        self,
        ticket: JobTicket,
        progress: Callable[[float, str], None],
        cancel: CancelToken,
        on_take: Callable[[TakeRecord], None] | None = None,
    ) -> RunResult:
        """Run the ticket in the calling thread; raises ``Cancelled`` or ``LivingPhotoError``.

        ``on_take`` gets each take (path relative to the data directory) as soon as it is
        encoded and scored, from a worker thread, while later takes are still made.
        """
        photo = self.media.resolve(ticket.input_path).read_bytes()
        run_dir = self.media.new_run_dir(ticket.job_id)
        options = AnimateOptions(
            variations=ticket.options.variations,
            seconds=ticket.options.seconds,
            fps=ticket.options.fps,
            size=ticket.options.size,
            seed=ticket.options.seed,
            motion_scale=ticket.options.motion_scale,
            face=ticket.options.face,
        )
        started = time.monotonic()
        report: TakeFn | None = None
        if on_take is not None:
            relay = on_take

            def report(take: FinishedTake) -> None:
                relay(
                    TakeRecord(
                        index=take.index,
                        path=self.media.relative(take.path),
                        seed=take.seed,
                        scores=take.scores.to_json(),
                    )
                )

        try:
            result = self._animator.animate(
                photo,
                ticket.prompt,
                options,
                run_dir,
                progress,
                cancel,
                on_take=report,
                inspection=self._inspection(ticket, photo),
            )
        except BaseException:
            self.media.delete_run(run_dir)
            raise
        elapsed = time.monotonic() - started
        variations = tuple(
            VariationRecord(
                index=v.index,
                path=self.media.relative(v.path),
                seed=v.seed,
                rank=v.rank,
                scores=v.scores.to_json(),
                combined=round(v.combined, 4),
                flagged=v.flagged,
            )
            for v in result.variations
        )
        return RunResult(
            run_dir=self.media.relative(run_dir),
            variations=variations,
            generation_s=round(elapsed, 4),
            warnings=result.warnings,
            motion=result.motion,
        )

    async def run_job(
        self,
        ticket: JobTicket,
        emit: EmitFn,
        cancel: CancelToken,
        worker: str = "",
        executor: Executor | None = None,
    ) -> WorkerEvent:
        """Run ``ticket`` in ``executor`` (default: the loop's); progress goes to ``emit``.

        Returns the final event. Long jobs get their own executor in the embedded queue so
        they never hold up the short blocking calls (intake, moderation) of the service.
        """
        loop = asyncio.get_running_loop()
        relay = _ProgressRelay(ticket.job_id, worker, emit, loop)
        timed_out = threading.Event()

        def time_out() -> None:
            timed_out.set()
            cancel.cancel()

        timer = loop.call_later(ticket.timeout_s, time_out)
        job = {"job_id": ticket.job_id}
        try:
            result = await loop.run_in_executor(
                executor,
                functools.partial(self.run_blocking, ticket, relay, cancel, relay.take),
            )
        except Cancelled:
            if timed_out.is_set():
                message = f"the job took longer than its {ticket.timeout_s:g} s limit"
                log.warning("job timed out", extra=job)
                return WorkerEvent(ticket.job_id, EventKind.FAILED, error=message, worker=worker)
            log.info("job cancelled", extra=job)
            return WorkerEvent(ticket.job_id, EventKind.CANCELLED, error="cancelled", worker=worker)
        except LivingPhotoError as error:
            log.info("job failed: %s", error, extra=job)
            return WorkerEvent(ticket.job_id, EventKind.FAILED, error=str(error), worker=worker)
        except Exception:
            log.exception("job crashed", extra=job)
            return WorkerEvent(
                ticket.job_id,
                EventKind.FAILED,
                error="generation failed with an internal error",
                worker=worker,
            )
        finally:
            timer.cancel()
        return WorkerEvent(
            ticket.job_id, EventKind.DONE, progress=1.0, result=result, worker=worker
        )


class _ProgressRelay:
    """A thread-safe progress callback that forwards throttled reports to the event loop, and
    finished takes (``take``) unthrottled."""

    def __init__(
        self, job_id: str, worker: str, emit: EmitFn, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._job_id = job_id
        self._worker = worker
        self._emit = emit
        self._loop = loop
        self._lock = threading.Lock()
        self._last = (-1.0, "", 0.0)

    def __call__(self, fraction: float, stage: str) -> None:
        now = time.monotonic()
        with self._lock:
            last_fraction, last_stage, last_at = self._last
            if (
                stage == last_stage
                and fraction - last_fraction < _PROGRESS_STEP
                and now - last_at < _PROGRESS_PERIOD_S
            ):
                return
            self._last = (fraction, stage, now)
        event = WorkerEvent(
            self._job_id,
            EventKind.PROGRESS,
            progress=min(1.0, max(0.0, fraction)),
            stage=stage,
            worker=self._worker,
        )
        self._loop.call_soon_threadsafe(self._emit, event)

    def take(self, take: TakeRecord) -> None:
        """Forward one finished take at once (never throttled)."""
        event = WorkerEvent(self._job_id, EventKind.TAKE, take=take, worker=self._worker)
        self._loop.call_soon_threadsafe(self._emit, event)
