"""The embedded queue: ``slots`` workers in the service process, each running one job at a time
on its own thread pool (``JobRunner.run_job``) at a lower CPU priority, apart from the threads
that serve short blocking calls. Nothing survives the process: on restart the store puts every unfinished job back in
line (``JobStore.recover``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress

from generation.backend import CancelToken
from generation.service.execute import JobRunner
from generation.service.jobs import EventKind, JobTicket, WorkerEvent
from generation.service.queue import QueueHealth

log = logging.getLogger(__name__)

_SHUTDOWN_GRACE_S = 10.0
JOB_NICENESS = 10


class EmbeddedQueue:
    def __init__(self, runner: JobRunner, slots: int, executor: ThreadPoolExecutor) -> None:
        self._runner = runner
        self._slots = slots
        self._executor = executor
        self._events: asyncio.Queue[WorkerEvent] = asyncio.Queue()
        self._running: dict[str, tuple[asyncio.Task[None], CancelToken]] = {}

    @classmethod
    @asynccontextmanager
    async def open(cls, runner: JobRunner, slots: int) -> AsyncIterator[EmbeddedQueue]:
        await asyncio.to_thread(runner.setup)
        executor = ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="job", initializer=_lower_priority
        )
        queue = cls(runner, slots, executor)
        try:
            yield queue
        finally:
            await queue._stop()
            executor.shutdown(wait=False, cancel_futures=True)

    async def free_slots(self, outstanding: int) -> int:
        return self._slots - max(outstanding, len(self._running))

    async def submit(self, ticket: JobTicket) -> None:
        token = CancelToken()
        task = asyncio.create_task(self._run(ticket, token), name=f"job-{ticket.job_id}")
        self._running[ticket.job_id] = (task, token)

    async def cancel(self, job_id: str) -> None:
        entry = self._running.get(job_id)
        if entry is not None:
            entry[1].cancel()

    async def follow(self, job_ids: Sequence[str]) -> None:
        """Nothing to follow: an embedded job does not outlive the process."""

    async def next_event(self) -> WorkerEvent:
        return await self._events.get()

    def health(self) -> QueueHealth:
        """In-process: always up."""
        return QueueHealth(backend="embedded")

    async def _run(self, ticket: JobTicket, token: CancelToken) -> None:
        try:
            self._events.put_nowait(
                WorkerEvent(ticket.job_id, EventKind.STARTED, worker="embedded")
            )
            final = await self._runner.run_job(
                ticket, self._events.put_nowait, token, "embedded", self._executor
            )
            self._events.put_nowait(final)
        finally:
            self._running.pop(ticket.job_id, None)

    async def _stop(self) -> None:
        """Stop running jobs; they stay ``running`` in the store and run again after a restart."""
        for _, token in self._running.values():
            token.cancel()
        tasks = [task for task, _ in self._running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_SHUTDOWN_GRACE_S)
            for task in pending:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if pending:
                log.warning("%d job(s) did not stop in time", len(pending))


def _lower_priority() -> None:
    """Run generation below the service's own threads (Linux: per-thread niceness).

    The API, intake and moderation then keep their latency while jobs use the rest of the CPU;
    processes a job starts (ffmpeg) inherit the lower priority.
    """
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
