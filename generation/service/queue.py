"""The job queue interface shared by the embedded queue and the Redis Streams queue.

The service keeps the fair, bounded line of waiting jobs in its store and hands a job to the
queue only when ``free_slots`` says a worker can start it, so fairness and positions do not
depend on the transport. A queue then runs (or has a worker run) each ticket and reports
``WorkerEvent``s: ``started``, ``progress``, and exactly one final ``done``/``failed``/
``cancelled`` per job as far as the service is concerned (the store ignores repeats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from generation.service.jobs import JobTicket, WorkerEvent


class JobQueue(Protocol):
    async def free_slots(self, outstanding: int) -> int:
        """How many more jobs could start now, given ``outstanding`` handed-over active jobs."""
        ...

    async def submit(self, ticket: JobTicket) -> None:
        """Hand a job to a worker."""
        ...

    async def cancel(self, job_id: str) -> None:
        """Ask the worker running (or about to run) ``job_id`` to stop."""
        ...

    async def follow(self, job_ids: Sequence[str]) -> None:
        """After a service restart: resume reporting events of jobs already handed over."""
        ...

    async def next_event(self) -> WorkerEvent:
        """Wait for the next report from any worker."""
        ...
