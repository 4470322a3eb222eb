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

Redis is transport, the service's job store is the record. A Redis that restarts empty (no
persistence) or is flushed loses the stream, the group and the events; nothing else:

- Workers recreate the stream and the group (``XGROUP CREATE … MKSTREAM``) when a command
  answers ``NOGROUP``, and back off with a capped, jittered delay while Redis does not answer.
- The service keeps an epoch key ``{prefix}:epoch``; when it disappears Redis lost its data.
  Every ``check_s`` the service also checks each job it handed over: its entry is still in the
  stream, or its final marker exists; otherwise the job was lost and the service sends it again
  from its store (once per loss). A worker that survived the loss still finishes its copy; the
  final marker keeps the result once-only either way.
- While Redis does not answer, submissions are still accepted into the store (202) and sent
  when it is back; ``health()`` says it is down (``/healthz``, ``livingphoto_queue_backend_up``).
  That includes start-up: a service (or worker) started before its Redis starts degraded and
  joins when Redis answers. Only a URL that cannot be parsed stops it (``UsageError``).

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
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from generation.service.backoff import Backoff, Outage
from generation.service.jobs import JobTicket, WorkerEvent
from generation.service.queue import QueueEvent, QueueHealth, QueueUnavailable, TransportNotice
from generation.service.tasks import reraise_if_cancelling, stop_tasks
from livingphoto.errors import UsageError

log = logging.getLogger(__name__)

GROUP = "workers"
EVENTS_MAXLEN = 2000
FINAL_TTL_S = 7 * 24 * 3600
_READ_BLOCK_MS = 100
_CONNECT_TIMEOUT_S = 5.0  # a Redis host that drops packets must not hang a worker for minutes
_COMMAND_TIMEOUT_S = 10.0  # longer than any blocking read (at most 1 s)
_MAX_SCAN = 10_000  # stream entries the watchdog reads per turn (the stream holds in-flight jobs)

# KEYS: final marker, events stream. ARGV: the attempt's marker value ("<kind>:<token>"), ttl,
# then field/value pairs of the event. Idempotent per marker value: a retry after a lost reply
# (connection dropped after Redis ran the script) answers 1 again and appends nothing.
FINALIZE_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '2000', '*', unpack(ARGV, 3))
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
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

    @property
    def epoch(self) -> str:
        return f"{self.prefix}:epoch"


Redis = aioredis.Redis


def client_for(url: str) -> Redis:
    """A Redis client for ``url`` with string responses; no I/O yet (it connects on first use).

    Raises ``UsageError`` (one line, password redacted) if ``url`` cannot be parsed: a wrong
    scheme, a port that is not a number or out of range, a bad option. An unreachable server is
    not an error here: callers decide whether to wait for it.
    """
    try:
        return aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_COMMAND_TIMEOUT_S,
            # A pooled connection to a Redis that restarted fails once: reconnect and retry.
            # Every write of the protocol tolerates a repeat (XADD of a ticket or event:
            # at-least-once; the final marker: FINALIZE_SCRIPT).
            retry=Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), 2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
    except ValueError as error:
        raise UsageError(f"not a usable Redis URL {_redact(url)}: {error}") from None


@asynccontextmanager
async def open_client(url: str) -> AsyncIterator[Redis]:
    """``client_for(url)``, closed on exit; the server may still be unreachable."""
    client = client_for(url)
    try:
        yield client
    finally:
        await client.aclose()


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Redis]:
    """``open_client`` that first PINGs; ``UsageError`` if the server does not answer."""
    async with open_client(url) as client:
        try:
            await client.ping()
        except (RedisError, OSError) as error:
            raise UsageError(f"cannot reach Redis at {_redact(url)}: {error}") from None
        yield client


def is_nogroup(error: BaseException) -> bool:
    """True for Redis's answer when the stream or its consumer group does not exist."""
    return isinstance(error, ResponseError) and str(error).startswith("NOGROUP")


async def ensure_group(client: Redis, keys: RedisKeys) -> None:
    """Create the stream and the consumer group unless they exist (``XGROUP CREATE … MKSTREAM``)."""
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
    """The service's side of the Redis queue (see the module docstring).

    ``check_s`` is the period of the watchdog that notices a lost or unreachable Redis (default:
    a third of the lease, between 0.2 and 1 s).
    """

    def __init__(
        self, client: Redis, keys: RedisKeys, lease_s: float, check_s: float | None = None
    ) -> None:
        self._client = client
        self._keys = keys
        self._lease_s = lease_s
        self._check_s = check_s or min(1.0, max(0.2, lease_s / 3))
        self._events: asyncio.Queue[QueueEvent] = asyncio.Queue()
        self._following: dict[str, str] = {}  # job id -> last event id read
        self._sent: set[str] = set()  # handed over; no final event read yet
        self._wake = asyncio.Event()
        self._epoch: str | None = None
        self._joined = False  # the stream and group were made (or found) once
        self._outage = Outage("Redis", log)
        self._resets = 0
        self._resent = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, prefix: str, lease_s: float, check_s: float | None = None
    ) -> AsyncIterator[RedisQueue]:
        async with open_client(url) as client:
            queue = cls(client, RedisKeys(prefix), lease_s, check_s)
            await queue._first_contact()
            tasks = [
                asyncio.create_task(queue._read_events(), name="redis-events"),
                asyncio.create_task(queue._watch(), name="redis-watchdog"),
            ]
            try:
                yield queue
            finally:
                await stop_tasks(tasks)

    async def free_slots(self, outstanding: int) -> int:
        if not self._outage.up:
            return 0  # the watchdog notices when Redis is back
        try:
            return await live_workers(self._client, self._keys, self._lease_s) - outstanding
        except (RedisError, OSError) as error:
            self._down(error)
            return 0

    async def submit(self, ticket: JobTicket) -> None:
        new = ticket.job_id not in self._following
        self._following.setdefault(ticket.job_id, "0-0")
        self._wake.set()
        try:
            await self._client.xadd(self._keys.jobs, {"ticket": json.dumps(ticket.to_json())})
        except (RedisError, OSError) as error:
            if new:
                self._following.pop(ticket.job_id, None)
            self._down(error)
            raise QueueUnavailable(f"Redis is unreachable: {error}") from None
        self._sent.add(ticket.job_id)

    async def cancel(self, job_id: str) -> None:
        try:
            await self._client.set(self._keys.cancel(job_id), "1", ex=FINAL_TTL_S)
        except (RedisError, OSError) as error:
            self._down(error)
            raise QueueUnavailable(f"Redis is unreachable: {error}") from None

    async def follow(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._following.setdefault(job_id, "0-0")
            self._sent.add(job_id)
        self._wake.set()

    async def next_event(self) -> QueueEvent:
        return await self._events.get()

    def health(self) -> QueueHealth:
        return QueueHealth(
            backend="redis",
            up=self._outage.up,
            down_for_s=round(self._outage.down_for_s, 3),
            outages=self._outage.outages,
            resets=self._resets,
            resent=self._resent,
        )

    # -- noticing a lost or unreachable Redis -----------------------------------------------

    def _down(self, error: BaseException) -> None:
        if self._outage.failed(error):
            self._events.put_nowait(TransportNotice(up=False, reason="Redis is unreachable"))

    async def _first_contact(self) -> None:
        """Join at start-up; if Redis does not answer (it starts after the service, or is
        restarting), start degraded instead: the watchdog joins as soon as it answers."""
        try:
            # Bounded: a Redis host that drops packets must not hold up the service's start.
            await asyncio.wait_for(self._join(), _CONNECT_TIMEOUT_S)
        except TimeoutError:
            self._down(TimeoutError(f"no answer within {_CONNECT_TIMEOUT_S:g} s"))
        except (RedisError, OSError) as error:
            self._down(error)

    async def _join(self) -> bool:
        """Make the stream and the group unless they exist, then ``_claim_epoch``."""
        if not self._joined:
            await ensure_group(self._client, self._keys)
            self._joined = True
        return await self._claim_epoch()

    async def _claim_epoch(self) -> bool:
        """Make sure ``{prefix}:epoch`` exists; True if it changed since we last saw it (Redis
        lost its data, or another service recreated it after such a loss)."""
        await self._client.set(self._keys.epoch, secrets.token_hex(8), nx=True)
        value = await self._client.get(self._keys.epoch)
        current = None if value is None else str(value)
        changed = self._epoch is not None and current != self._epoch
        self._epoch = current
        return changed

    async def _watch(self) -> None:
        backoff = Backoff(0.1, max(1.0, min(5.0, self._lease_s)))
        while True:
            reraise_if_cancelling()
            try:
                await self._check()
            except (RedisError, OSError) as error:
                reraise_if_cancelling()
                self._down(error)
                await asyncio.sleep(backoff.next_delay())
                continue
            except Exception:
                reraise_if_cancelling()
                log.exception("the Redis watchdog failed; retrying")
            backoff.reset()
            await asyncio.sleep(self._check_s)

    async def _check(self) -> None:
        """One watchdog turn: epoch, group, and every handed-over job still accounted for."""
        handed_over = set(self._sent)  # before reading the stream: see the module docstring
        reset = await self._join()
        if self._outage.ok():
            self._events.put_nowait(TransportNotice(up=True, reason="Redis is back"))
        if reset:
            self._resets += 1
            await ensure_group(self._client, self._keys)
            for job_id in self._following:
                self._following[job_id] = "0-0"  # the events streams started again too
            self._wake.set()
            log.warning("Redis lost its data (restarted empty?): recreated the stream and group")
        if not handed_over:
            return
        in_stream = await self._jobs_in_stream()
        missing = sorted(handed_over - in_stream)
        if not missing:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in missing:
                pipe.exists(self._keys.final(job_id))
            finals = await pipe.execute()
        lost = tuple(job_id for job_id, final in zip(missing, finals, strict=True) if not final)
        if not lost:
            return
        self._sent.difference_update(lost)
        self._resent += len(lost)
        for job_id in lost:
            self._following.setdefault(job_id, "0-0")
        log.warning("re-sending %d job(s) that Redis lost", len(lost))
        self._events.put_nowait(
            TransportNotice(up=True, resend=lost, reason="the queue lost this job; sent again")
        )

    async def _jobs_in_stream(self) -> set[str]:
        entries = await self._client.xrange(self._keys.jobs, "-", "+", count=_MAX_SCAN)
        present: set[str] = set()
        for _, fields in cast(list[Any], entries or []):
            try:
                present.add(str(json.loads(dict(fields)["ticket"])["job_id"]))
            except (KeyError, ValueError, TypeError):
                continue
        return present

    # -- relaying workers' events -----------------------------------------------------------

    async def _read_events(self) -> None:
        backoff = Backoff(0.1, max(1.0, min(5.0, self._lease_s)))
        while True:
            reraise_if_cancelling()
            if not self._following or not self._outage.up:
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._check_s)
                continue
            streams = {self._keys.events(job_id): last for job_id, last in self._following.items()}
            try:
                reply = await self._client.xread(
                    cast(Any, streams), count=100, block=_READ_BLOCK_MS
                )
            except (RedisError, OSError) as error:
                reraise_if_cancelling()
                self._down(error)
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
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
                        self._sent.discard(job_id)
                    self._events.put_nowait(event)
