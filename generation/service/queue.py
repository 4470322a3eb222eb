"""The job queue interface shared by the embedded queue and the Redis Streams queue.

The service keeps the fair, bounded line of waiting jobs in its store and hands a job to the
queue only when ``free_slots`` says a worker can start it, so fairness and positions do not
depend on the transport. A queue then runs (or has a worker run) each ticket and reports
``WorkerEvent``s: ``started``, ``progress``, and exactly one final ``done``/``failed``/
``cancelled`` per job as far as the service is concerned (the store ignores repeats).

A queue whose transport can fail (Redis) also reports ``TransportNotice``s: the transport went
down or came back, or it lost jobs that had been handed over (a Redis that restarted empty).
The service then sends those jobs again from its store, which is the record; the transport
only carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from generation.service.jobs import JobTicket, WorkerEvent


class QueueUnavailable(Exception):
    """The transport cannot take a job now (Redis unreachable); the job stays in line."""


@dataclass(frozen=True)
class QueueHealth:
    """What ``/healthz`` and ``/metrics`` say about the transport.

    ``down_for_s``: seconds since the transport stopped answering (0.0 while up); ``resets``:
    times the transport was found to have lost its data; ``resent``: jobs sent again because of
    that.
    """

    backend: str
    up: bool = True
    down_for_s: float = 0.0
    outages: int = 0
    resets: int = 0
    resent: int = 0


@dataclass(frozen=True)
class TransportNotice:
    """Not a worker's report: the transport changed state.

    ``up`` is the transport's state now; ``resend`` lists handed-over jobs it lost (send them
    again, once); ``reason`` is a short sentence for logs and watchers.
    """

    up: bool
    resend: tuple[str, ...] = ()
    reason: str = ""


QueueEvent = WorkerEvent | TransportNotice


class JobQueue(Protocol):
    async def free_slots(self, outstanding: int) -> int:
        """How many more jobs could start now, given ``outstanding`` handed-over active jobs
        (0 while the transport is down)."""
        ...

    async def submit(self, ticket: JobTicket) -> None:
        """Hand a job to a worker; ``QueueUnavailable`` if the transport is down."""
        ...

    async def cancel(self, job_id: str) -> None:
        """Ask the worker running (or about to run) ``job_id`` to stop;
        ``QueueUnavailable`` if the transport is down."""
        ...

    async def follow(self, job_ids: Sequence[str]) -> None:
        """After a service restart: resume reporting events of jobs already handed over."""
        ...

    async def next_event(self) -> QueueEvent:
        """Wait for the next report from any worker, or a notice about the transport."""
        ...

    def health(self) -> QueueHealth:
        """The transport's state now (cheap: no I/O)."""
        ...
