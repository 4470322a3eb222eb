"""``livingphoto worker``: one generation worker on the Redis Streams queue.

It takes one job at a time (first any job whose worker died, via ``XAUTOCLAIM``, then new ones
via ``XREADGROUP``), renews its claim while the job runs, relays progress on the job's event
stream, honours cancellation requests, and writes results exactly once (see
``generation.service.redis_queue`` for the protocol and the shared data directory).

When Redis does not answer (also when the worker starts before Redis) it backs off (capped,
jittered) and logs the outage once; when Redis comes back empty it recreates the stream and the
group, and a finished result waits for Redis rather than being thrown away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, cast

from redis.exceptions import RedisError, ResponseError

from generation.backend import CancelToken
from generation.service.backoff import Backoff, Outage
from generation.service.execute import JobRunner
from generation.service.jobs import EventKind, JobTicket, WorkerEvent
from generation.service.ready import write_ready_file
from generation.service.redis_queue import (
    EVENTS_MAXLEN,
    FINAL_TTL_S,
    FINALIZE_SCRIPT,
    GROUP,
    Redis,
    RedisKeys,
    ensure_group,
    is_nogroup,
    prune_consumers,
)
from generation.service.tasks import reraise_if_cancelling, stop_tasks
from livingphoto.errors import UsageError

log = logging.getLogger(__name__)

CANCEL_POLL_S = 0.5  # how often a running job's cancel request is looked for


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisWorker:
    def __init__(
        self,
        client: Redis,
        keys: RedisKeys,
        runner: JobRunner,
        lease_s: float,
        max_deliveries: int,
        consumer: str | None = None,
    ) -> None:
        self._client = client
        self._keys = keys
        self._runner = runner
        self._lease_s = lease_s
        self._max_deliveries = max_deliveries
        self.consumer = consumer or consumer_name()
        self._finalize = client.register_script(FINALIZE_SCRIPT)
        self._stopping = False
        self._backoff = Backoff(0.1, max(1.0, min(5.0, lease_s)))
        self._outage = Outage("Redis", log)
        self._groups_recreated = 0
        self.jobs_done = 0

    async def run(self, stop: asyncio.Event, ready_file: Path | None = None) -> None:
        """Serve jobs until ``stop`` is set; ride out Redis outages and losses."""
        if not await self._until_ready(stop):
            return  # told to stop before Redis ever answered
        presence = asyncio.create_task(self._presence(), name="worker-presence")
        if ready_file is not None:
            write_ready_file(ready_file, {"consumer": self.consumer, "pid": os.getpid()})
        log.info("worker %s ready", self.consumer)
        try:
            while not stop.is_set():
                reraise_if_cancelling()
                try:
                    entry = await self._claim_stale() or await self._read_new()
                    self._reachable()
                    if entry is not None:
                        await self._process(*entry, stop=stop)
                except (RedisError, OSError) as error:
                    reraise_if_cancelling()
                    if is_nogroup(error):
                        await self._recreate_group(error)
                        continue
                    # The job (if any) stays pending and is taken over after the lease, or the
                    # service sends it again if Redis lost it.
                    self._unreachable(error)
                    await _wait(stop, self._backoff.next_delay())
        finally:
            self._stopping = True
            await stop_tasks([presence])
            with suppress(Exception):
                await self._client.zrem(self._keys.workers, self.consumer)

    async def _until_ready(self, stop: asyncio.Event) -> bool:
        """Join the group and the roster, waiting (with back-off) while Redis does not answer,
        also at start-up. False if ``stop`` is set first."""
        while not stop.is_set():
            try:
                await ensure_group(self._client, self._keys)
                await prune_consumers(self._client, self._keys)
                await self._beat()
                self._reachable()
                return True
            except (RedisError, OSError) as error:
                reraise_if_cancelling()
                if is_nogroup(error):  # the group vanished between the two calls
                    continue
                self._unreachable(error)
                await _wait(stop, self._backoff.next_delay())
        return False

    def _reachable(self) -> None:
        self._backoff.reset()
        self._outage.ok()

    def _unreachable(self, error: BaseException) -> None:
        self._outage.failed(error)

    async def _recreate_group(self, error: BaseException) -> None:
        """The stream or group is gone (Redis restarted empty, or was flushed): make it again."""
        try:
            await ensure_group(self._client, self._keys)
        except (RedisError, OSError) as retry_error:
            self._unreachable(retry_error)
            await asyncio.sleep(self._backoff.next_delay())
            return
        self._groups_recreated += 1
        log.info("the job stream or its consumer group was missing (%s); recreated it", error)

    # -- taking jobs ------------------------------------------------------------------------

    async def _claim_stale(self) -> tuple[str, dict[str, str]] | None:
        reply = await self._client.xautoclaim(
            self._keys.jobs,
            GROUP,
            self.consumer,
            min_idle_time=int(self._lease_s * 1000),
            start_id="0-0",
            count=1,
        )
        entries = cast(list[Any], reply[1]) if reply else []
        for entry_id, fields in entries:
            if fields:
                log.info("took over a job from a worker that stopped answering")
                return str(entry_id), dict(fields)
        return None

    async def _read_new(self) -> tuple[str, dict[str, str]] | None:
        block_ms = int(max(100, min(1000, self._lease_s * 250)))
        reply = await self._client.xreadgroup(
            GROUP, self.consumer, {self._keys.jobs: ">"}, count=1, block=block_ms
        )
        for _, entries in cast(list[Any], reply or []):
            for entry_id, fields in entries:
                return str(entry_id), dict(fields)
        return None

    async def _deliveries(self, entry_id: str) -> int:
        pending = await self._client.xpending_range(
            self._keys.jobs, GROUP, min=entry_id, max=entry_id, count=1
        )
        return int(pending[0]["times_delivered"]) if pending else 1

    # -- running one job --------------------------------------------------------------------

    async def _process(self, entry_id: str, fields: dict[str, str], stop: asyncio.Event) -> None:
        try:
            ticket = JobTicket.from_json(json.loads(fields["ticket"]))
        except (KeyError, ValueError, TypeError, UsageError):
            log.error("dropped a malformed job entry %s", entry_id)
            await self._ack(entry_id)
            return
        job = {"job_id": ticket.job_id}
        delivery = await self._deliveries(entry_id)
        if await self._client.exists(self._keys.final(ticket.job_id)):
            await self._ack(entry_id)  # already finished by another worker
            return
        if delivery > self._max_deliveries:
            runs = delivery - 1
            error = (
                f"dead letter: the job was started {runs} times and its worker stopped each "
                "time; it will not be retried"
            )
            log.error("job dead-lettered after %d deliveries", runs, extra=job)
            await self._client.xadd(
                self._keys.dead, {"job_id": ticket.job_id, "deliveries": str(runs)}
            )
            await self._final(WorkerEvent(ticket.job_id, EventKind.FAILED, error=error))
            await self._ack(entry_id)
            return
        if await self._client.exists(self._keys.cancel(ticket.job_id)):
            await self._final(WorkerEvent(ticket.job_id, EventKind.CANCELLED, error="cancelled"))
            await self._ack(entry_id)
            return
        log.info("job started (delivery %d)", delivery, extra=job)
        publisher = _Publisher(self._client, self._keys)
        publisher.emit(
            WorkerEvent(ticket.job_id, EventKind.STARTED, worker=self.consumer, delivery=delivery)
        )
        token = CancelToken()
        heartbeat = asyncio.create_task(self._heartbeat(entry_id, ticket.job_id, token, stop))
        try:
            final = await self._runner.run_job(ticket, publisher.emit, token, worker=self.consumer)
        finally:
            await stop_tasks([heartbeat])
            await publisher.close()
        if self._stopping or (stop.is_set() and final.kind is EventKind.CANCELLED):
            log.info("worker stopping: job left for another worker", extra=job)
            return
        won = await self._final_when_reachable(final, stop)
        if not won and final.result is not None:
            self._runner.media.delete_run(self._runner.media.resolve(final.result.run_dir))
            if won is False:
                log.info("another worker finished this job first; discarded own result", extra=job)
        if won is None:
            return  # stopped while Redis was away: the job runs again elsewhere
        self.jobs_done += 1
        await self._ack(entry_id)

    async def _heartbeat(
        self, entry_id: str, job_id: str, token: CancelToken, stop: asyncio.Event
    ) -> None:
        """Renew the claim every third of the lease (resets idle time), and turn cancel
        requests into the token, looked for every ``CANCEL_POLL_S`` (a short job is cancelled
        while it still runs, as with the embedded queue)."""
        renew_s = self._lease_s / 3
        next_renewal = time.monotonic() + renew_s
        while True:
            await asyncio.sleep(min(CANCEL_POLL_S, renew_s))
            reraise_if_cancelling()
            if stop.is_set():
                token.cancel()
            try:
                if await self._client.exists(self._keys.cancel(job_id)):
                    token.cancel()
                if time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + renew_s
                    await self._client.xclaim(
                        self._keys.jobs, GROUP, self.consumer, 0, [entry_id], justid=True
                    )
                self._reachable()
            except (RedisError, OSError) as error:
                reraise_if_cancelling()
                if is_nogroup(error):
                    # Redis lost its data: the entry is gone and the service sends the job
                    # again; this run goes on and its result still counts if it is first.
                    await self._recreate_group(error)
                else:
                    self._unreachable(error)

    async def _final_when_reachable(self, event: WorkerEvent, stop: asyncio.Event) -> bool | None:
        """``_final``, retried with back-off while Redis does not answer (a result is worth
        waiting for). None if the worker is told to stop first."""
        marker = f"{event.kind.value}:{secrets.token_hex(8)}"  # the same for every retry
        while True:
            try:
                won = await self._final(event, marker)
            except (RedisError, OSError) as error:
                reraise_if_cancelling()
                self._unreachable(error)
                if stop.is_set() or self._stopping:
                    log.warning(
                        "stopping before Redis came back: result dropped",
                        extra={"job_id": event.job_id},
                    )
                    return None
                await _wait(stop, self._backoff.next_delay())
                continue
            self._reachable()
            return won

    async def _final(self, event: WorkerEvent, marker: str = "") -> bool:
        """Append the job's one final event (atomic with the completion marker ``marker``,
        unique to this attempt: retrying with the same marker is safe)."""
        fields = event.to_fields()
        marker = marker or f"{event.kind.value}:{secrets.token_hex(8)}"
        args: list[str] = [marker, str(FINAL_TTL_S)]
        for key, value in fields.items():
            args += [key, value]
        won = await self._finalize(
            keys=[self._keys.final(event.job_id), self._keys.events(event.job_id)], args=args
        )
        return bool(won)

    async def _ack(self, entry_id: str) -> None:
        """Acknowledge and delete the entry; an entry lost with Redis's data needs neither."""
        try:
            await self._client.xack(self._keys.jobs, GROUP, entry_id)
            await self._client.xdel(self._keys.jobs, entry_id)
        except ResponseError as error:
            if not is_nogroup(error):
                raise

    async def _beat(self) -> None:
        await self._client.zadd(self._keys.workers, {self.consumer: time.time()})

    async def _presence(self) -> None:
        """Beat every ``lease/3``; while Redis is away, retry sooner (capped, jittered) so the
        service counts this worker again as soon as Redis is back."""
        retry = Backoff(0.1, max(0.1, self._lease_s / 3))
        delay = self._lease_s / 3
        while True:
            await asyncio.sleep(delay)
            reraise_if_cancelling()
            try:
                await self._beat()
                retry.reset()
                delay = self._lease_s / 3
            except Exception as error:
                reraise_if_cancelling()
                self._unreachable(error)
                delay = retry.next_delay()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class _Publisher:
    """Relays a job's progress events to its Redis stream, in order, from a sync callback."""

    def __init__(self, client: Redis, keys: RedisKeys) -> None:
        self._client = client
        self._keys = keys
        self._queue: asyncio.Queue[WorkerEvent | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._publish())

    def emit(self, event: WorkerEvent) -> None:
        self._queue.put_nowait(event)

    async def close(self) -> None:
        self._queue.put_nowait(None)
        await self._task

    async def _publish(self) -> None:
        failed = False
        while True:
            event = await self._queue.get()
            if event is None:
                return
            if failed and event.kind is EventKind.PROGRESS and not self._queue.empty():
                continue  # Redis was away: skip to the newest report
            try:
                await self._client.xadd(
                    self._keys.events(event.job_id),
                    cast(Any, event.to_fields()),
                    maxlen=EVENTS_MAXLEN,
                    approximate=True,
                )
                failed = False
            except Exception:
                reraise_if_cancelling()
                if not failed:
                    log.warning("could not publish progress", extra={"job_id": event.job_id})
                failed = True
