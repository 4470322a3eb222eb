"""Scale-out queue on Redis Streams: the service side (``RedisQueue``) and the shared key layout.

Design (DESIGN.md "Distributed queue"):

- ``{prefix}:jobs`` is a stream read by the consumer group ``workers``. The service ``XADD``s
  a ticket when a worker is free; each worker ``XREADGROUP``s one job at a time.
- While a job runs, its worker renews its claim every ``lease/3`` (``XCLAIM … JUSTID``, which
  resets the idle time without counting a delivery). Idle workers ``XAUTOCLAIM`` entries idle
  longer than the lease, so a job whose worker died is taken over within seconds. Delivery is
  at-least-once; after ``max_deliveries`` the job is dead-lettered (state ``failed`` with a
  clear error, and an entry on ``{prefix}:dead``).
- Each job reports on its own stream ``{prefix}:job:{id}:events`` (started, progress, final);
  the service follows the streams of the jobs it handed over, also after its own restart.
- Results are written once: a worker renders into its own ``run-*`` directory and then a Lua
  script sets ``{prefix}:job:{id}:final`` with ``SET NX`` and appends the final event in the
  same atomic step. A worker that loses that race deletes its directory, so however many
  workers ran a job, exactly one final event and one set of clips exist.
- Live workers keep a heartbeat in the sorted set ``{prefix}:workers``; the service hands out
  only as many jobs as there are live workers, so its fair order (not the stream's FIFO)
  decides who goes next.

Media travels through a SHARED DIRECTORY, not through Redis: the service and every worker
are given the same ``--data-dir`` (a local disk on one host, or a network file system such as
NFS mounted at the same place on every host). The service writes the sanitised photo to
``media/<job_id>/input.png`` before the ticket is queued; workers write clips under
``media/<job_id>/run-*/`` and the service serves them from there. Redis only carries small
JSON messages, so its memory stays small and clips never pass through it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from generation.service.jobs import JobTicket, WorkerEvent
from generation.service.tasks import reraise_if_cancelling, stop_tasks
from livingphoto.errors import UsageError

log = logging.getLogger(__name__)

GROUP = "workers"
EVENTS_MAXLEN = 2000
FINAL_TTL_S = 7 * 24 * 3600
_READ_BLOCK_MS = 100

# KEYS: final marker, events stream. ARGV: kind, ttl, then field/value pairs of the event.
FINALIZE_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '2000', '*', unpack(ARGV, 3))
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    @property
    def jobs(self) -> str:
        return f"{self.prefix}:jobs"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def final(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:final"

    def cancel(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:cancel"


Redis = aioredis.Redis


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Redis]:
    """A Redis client with string responses; ``UsageError`` if the server does not answer."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as error:
            raise UsageError(f"cannot reach Redis at {_redact(url)}: {error}") from None
        yield client
    finally:
        await client.aclose()


async def ensure_group(client: Redis, keys: RedisKeys) -> None:
    try:
        await client.xgroup_create(keys.jobs, GROUP, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def live_workers(client: Redis, keys: RedisKeys, lease_s: float) -> int:
    """Workers that sent a heartbeat within the lease (long-dead ones are dropped)."""
    now = time.time()
    await client.zremrangebyscore(keys.workers, "-inf", now - max(60.0, 10 * lease_s))
    return int(await client.zcount(keys.workers, now - lease_s, "+inf"))


async def prune_consumers(client: Redis, keys: RedisKeys, idle_s: float = 3600.0) -> int:
    """Remove group consumers idle for ``idle_s`` with nothing pending (workers long gone)."""
    removed = 0
    for consumer in await client.xinfo_consumers(keys.jobs, GROUP):
        if int(consumer["pending"]) == 0 and int(consumer["idle"]) > idle_s * 1000:
            await client.xgroup_delconsumer(keys.jobs, GROUP, consumer["name"])
            removed += 1
    return removed


def _redact(url: str) -> str:
    """The URL without a password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


class RedisQueue:
    """The service's side of the Redis queue (see the module docstring)."""

    def __init__(self, client: Redis, keys: RedisKeys, lease_s: float) -> None:
        self._client = client
        self._keys = keys
        self._lease_s = lease_s
        self._events: asyncio.Queue[WorkerEvent] = asyncio.Queue()
        self._following: dict[str, str] = {}
        self._wake = asyncio.Event()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, prefix: str, lease_s: float) -> AsyncIterator[RedisQueue]:
        async with connect(url) as client:
            keys = RedisKeys(prefix)
            await ensure_group(client, keys)
            queue = cls(client, keys, lease_s)
            reader = asyncio.create_task(queue._read_events(), name="redis-events")
            try:
                yield queue
            finally:
                await stop_tasks([reader])

    async def free_slots(self, outstanding: int) -> int:
        return await live_workers(self._client, self._keys, self._lease_s) - outstanding

    async def submit(self, ticket: JobTicket) -> None:
        self._following.setdefault(ticket.job_id, "0-0")
        self._wake.set()
        await self._client.xadd(self._keys.jobs, {"ticket": json.dumps(ticket.to_json())})

    async def cancel(self, job_id: str) -> None:
        await self._client.set(self._keys.cancel(job_id), "1", ex=FINAL_TTL_S)

    async def follow(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._following.setdefault(job_id, "0-0")
        self._wake.set()

    async def next_event(self) -> WorkerEvent:
        return await self._events.get()

    async def _read_events(self) -> None:
        while True:
            reraise_if_cancelling()
            if not self._following:
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)
                continue
            streams = {self._keys.events(job_id): last for job_id, last in self._following.items()}
            try:
                reply = await self._client.xread(
                    cast(Any, streams), count=100, block=_READ_BLOCK_MS
                )
            except (RedisError, OSError):
                reraise_if_cancelling()
                log.warning("reading job events from Redis failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            for stream, entries in cast(list[Any], reply or []):
                job_id = str(stream).split(":")[-2]
                for entry_id, fields in entries:
                    if job_id in self._following:
                        self._following[job_id] = entry_id
                    try:
                        event = WorkerEvent.from_fields(dict(fields))
                    except (KeyError, ValueError, UsageError):
                        log.warning("ignored a malformed job event", extra={"job_id": job_id})
                        continue
                    if event.kind.final:
                        self._following.pop(job_id, None)
                    self._events.put_nowait(event)
