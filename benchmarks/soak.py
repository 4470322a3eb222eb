"""Soak test with faults: the service, two Redis workers and a private Redis, on loopback.

Usage::

    .venv/bin/python benchmarks/soak.py                       # 2000 jobs, 3 worker kills
    .venv/bin/python benchmarks/soak.py --jobs 300 --worker-kills 1 --json

Starts its own ``redis-server`` on a free port (``--save "" --appendonly no``: no persistence),
``livingphoto service`` and two ``livingphoto worker`` processes (sleep backend, short jobs),
all in a temporary directory. ``--clients`` concurrent clients submit ``--jobs`` jobs (each with
an idempotency key, retried until accepted) and follow each over Server-Sent Events, as the chat
bots do, reconnecting when the stream breaks. During the run it injects, one after the other:

- ``--worker-kills`` times: ``kill -9`` of a random worker, and a replacement started at once;
- once: ``kill -9`` of the service, then a new service on the same data directory;
- once: ``kill -9`` of Redis, ``--redis-down-s`` without it, then Redis again, empty.

Each fault's recovery time is the time from the fault until every job that was in flight at
that moment has finished. At the end (all processes stopped) it checks: every job is ``done``
exactly once (one row, one run directory, ``variations`` clips, served by the service), no
duplicate clip files and no orphaned media; no SSE stream hung (no 20 s without a byte);
RSS of each long-lived process within ``--rss-tolerance`` after warm-up and open file
descriptors flat. It prints jobs/s, p50/p95 latency, the faults and the checks; exit status 1
if a check failed. Bounded: ``--max-seconds`` stops a run that does not finish.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from redisserver import RedisServer
from servicekit import (
    ServiceProcess,
    job_form,
    job_request,
    make_photo,
    start_service_process,
    start_worker_process,
)

FINAL = frozenset({"done", "failed", "refused", "cancelled"})
SSE_STALL_S = 20.0  # the service sends a keep-alive every 15 s: a longer silence is a hang


@dataclass(frozen=True)
class SoakConfig:
    jobs: int = 2000
    clients: int = 16
    users: int = 40
    sleep_s: float = 0.05
    variations: int = 1
    lease_s: float = 2.0
    worker_kills: int = 3
    redis_down_s: float = 2.0
    warmup_fraction: float = 0.25
    rss_tolerance: float = 0.10
    fd_tolerance: int = 4
    max_seconds: float = 1500.0
    seed: int = 1


@dataclass
class FaultRecord:
    kind: str
    at_s: float  # since the start of the run
    in_flight: int
    recovery_s: float = float("nan")
    detail: str = ""


@dataclass
class ProcessTrend:
    role: str
    pid: int
    samples: int
    rss_warm_mb: float
    rss_end_mb: float
    fds_warm: float
    fds_end: float
    cpu_s: float

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_mb - self.rss_warm_mb) / self.rss_warm_mb


@dataclass
class SoakResult:
    config: SoakConfig
    jobs: int = 0
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    trends: list[ProcessTrend] = field(default_factory=list)
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    sse_reconnects: int = 0
    sse_stalls: int = 0
    submit_retries: int = 0
    takeovers: int = 0
    duplicate_runs: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks.values())

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.elapsed_s if self.elapsed_s else 0.0

    def latency(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "jobs": self.jobs,
            "elapsed_s": round(self.elapsed_s, 2),
            "jobs_per_s": round(self.jobs_per_s, 2),
            "latency_p50_s": round(self.latency(50), 3),
            "latency_p95_s": round(self.latency(95), 3),
            "faults": [asdict(f) for f in self.faults],
            "processes": [
                {**asdict(t), "rss_growth_pct": round(100 * t.rss_growth, 1)} for t in self.trends
            ],
            "checks": {name: {"ok": ok, "detail": d} for name, (ok, d) in self.checks.items()},
            "sse_reconnects": self.sse_reconnects,
            "sse_stalls": self.sse_stalls,
            "submit_retries": self.submit_retries,
            "takeovers": self.takeovers,
            "duplicate_runs": self.duplicate_runs,
        }

    def report(self) -> str:
        s = self.summary()
        lines = [
            f"jobs {s['jobs']} in {s['elapsed_s']} s: {s['jobs_per_s']} jobs/s, latency p50 "
            f"{s['latency_p50_s']} s, p95 {s['latency_p95_s']} s",
            f"SSE reconnect attempts {self.sse_reconnects}, stalls {self.sse_stalls}; submit retries "
            f"{self.submit_retries}; take-overs {self.takeovers}; duplicate runs discarded "
            f"{self.duplicate_runs}",
            "| fault | at | in flight | recovered in | detail |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {f.kind} | {f.at_s:.1f} s | {f.in_flight} | {f.recovery_s:.2f} s | {f.detail} |"
            for f in self.faults
        ]
        lines += [
            "| process | pid | RSS warm → end | growth | fds warm → end | CPU |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {t.role} | {t.pid} | {t.rss_warm_mb:.0f} → {t.rss_end_mb:.0f} MB | "
            f"{100 * t.rss_growth:+.1f} % | {t.fds_warm:.0f} → {t.fds_end:.0f} | {t.cpu_s:.0f} s |"
            for t in self.trends
        ]
        lines += [
            f"{'ok  ' if ok else 'FAIL'} {name}: {detail}"
            for name, (ok, detail) in self.checks.items()
        ]
        return "\n".join(lines)


class Sampler:
    """Samples RSS and open fds of the current processes every ``period_s`` (own thread)."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self.watched: dict[str, int] = {}  # role -> pid
        self.samples: dict[tuple[str, int], list[tuple[float, int, int]]] = {}
        self.cpu_s: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, role: str, pid: int) -> None:
        with self._lock:
            self.watched[role] = pid

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            with self._lock:
                watched = list(self.watched.items())
            for role, pid in watched:
                try:
                    process = psutil.Process(pid)
                    sample = (time.monotonic(), process.memory_info().rss, process.num_fds())
                    times = process.cpu_times()
                    self.cpu_s[(role, pid)] = times.user + times.system
                except (psutil.Error, OSError):
                    continue
                self.samples.setdefault((role, pid), []).append(sample)

    def trends(self, started: float, warm_at: float, min_life_s: float) -> list[ProcessTrend]:
        """Per process that lived past warm-up for ``min_life_s``: medians of the first and the
        last fifth of its samples after warm-up."""
        trends = []
        for (role, pid), samples in sorted(self.samples.items()):
            after = [s for s in samples if s[0] >= max(warm_at, samples[0][0] + 5.0)]
            if len(after) < 10 or after[-1][0] - after[0][0] < min_life_s:
                continue
            n = max(3, len(after) // 5)
            warm, end = after[:n], after[-n:]
            trends.append(
                ProcessTrend(
                    role=role,
                    pid=pid,
                    samples=len(after),
                    rss_warm_mb=statistics.median(s[1] for s in warm) / 2**20,
                    rss_end_mb=statistics.median(s[1] for s in end) / 2**20,
                    fds_warm=statistics.median(s[2] for s in warm),
                    fds_end=statistics.median(s[2] for s in end),
                    cpu_s=round(self.cpu_s.get((role, pid), 0.0), 1),
                )
            )
        return trends


class Cluster:
    """The processes under test; ``service.url`` changes when the service restarts."""

    def __init__(self, root: Path, config: SoakConfig, sampler: Sampler) -> None:
        self.root = root
        self.config = config
        self.sampler = sampler
        self.redis = RedisServer.start(root / "redis")
        self.data_dir = root / "data"
        self.prefix = "soak"
        self.env = {
            "LIVINGPHOTO_RATE_USER_PER_MIN": "0",
            "LIVINGPHOTO_RATE_CHAT_PER_MIN": "0",
            "LIVINGPHOTO_DAILY_QUOTA": "0",
            "LIVINGPHOTO_MAX_QUEUE": "100000",
            "LIVINGPHOTO_MAX_INFLIGHT_PER_USER": "100000",
            "LIVINGPHOTO_SLEEP_SECONDS": str(config.sleep_s),
            "LIVINGPHOTO_QUEUE_LEASE_S": str(config.lease_s),
            "LIVINGPHOTO_QUEUE_MAX_DELIVERIES": "10",
            "LIVINGPHOTO_REDIS_PREFIX": self.prefix,
            "LIVINGPHOTO_NSFW_FRAME_SAMPLES": "1",
            "LIVINGPHOTO_LOG_LEVEL": "INFO",
        }
        self.token = ""
        self.service: ServiceProcess | None = None
        self.workers: dict[str, ServiceProcess] = {}
        self.retired: list[ServiceProcess] = []

    @property
    def url(self) -> str:
        return self.service.url if self.service is not None else ""

    def start_service(self) -> None:
        self.service = start_service_process(
            self.root,
            "sleep",
            self.redis.url,
            token=self.token or None,
            data_dir=self.data_dir,
            env=self.env,
            timeout=180,
        )
        self.token = self.service.token
        self.sampler.watch("service", self.service.proc.pid)

    def start_worker(self, slot: str) -> None:
        worker = start_worker_process(
            self.root, self.redis.url, self.prefix, self.data_dir, env=self.env, timeout=180
        )
        self.workers[slot] = worker
        self.sampler.watch(slot, worker.proc.pid)

    def kill_service(self) -> None:
        assert self.service is not None
        self.service.kill()
        self.retired.append(self.service)
        self.service = None

    def kill_worker(self, slot: str) -> None:
        worker = self.workers.pop(slot)
        worker.kill()
        self.retired.append(worker)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        if self.service is not None:
            self.service.stop()
        self.redis.stop()

    def logs(self) -> list[str]:
        processes = [*self.retired, *self.workers.values()]
        if self.service is not None:
            processes.append(self.service)
        return [p.log() for p in processes]


@dataclass
class Tracker:
    """What the clients know: submitted and finished jobs, and when."""

    started: float = field(default_factory=time.monotonic)
    submitted: dict[int, str] = field(default_factory=dict)  # index -> job id
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)
    latencies: dict[int, float] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    sse_reconnects: int = 0
    sse_stalls: int = 0
    submit_retries: int = 0

    def in_flight(self) -> set[int]:
        return set(self.submitted) - set(self.finished)

    def finish(self, index: int, view: dict[str, Any], latency_s: float) -> None:
        self.finished[index] = view
        self.latencies[index] = latency_s
        self.changed.set()

    async def wait(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await self.changed.wait()


async def _submit(
    http: aiohttp.ClientSession, cluster: Cluster, tracker: Tracker, index: int, photo: bytes
) -> str:
    config = cluster.config
    request = job_request(
        user_id=f"user{index % config.users}",
        variations=config.variations,
        seed=index,
        idempotency_key=f"soak-{index}",
    )
    while True:
        try:
            async with http.post(f"{cluster.url}/v1/jobs", data=job_form(request, photo)) as r:
                body = await r.json(content_type=None)
                if r.status == 202:
                    return str(body["job_id"])
                if r.status < 500 and r.status != 429:
                    raise RuntimeError(f"job {index} refused: {r.status} {body}")
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            pass
        tracker.submit_retries += 1
        await asyncio.sleep(0.2)


async def _follow(
    http: aiohttp.ClientSession, cluster: Cluster, tracker: Tracker, job_id: str
) -> dict[str, Any]:
    """The job's final view over SSE; reconnects when the stream breaks (service restart)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=SSE_STALL_S)
    first = True
    while True:
        if not first:
            tracker.sse_reconnects += 1
            await asyncio.sleep(0.2)
        first = False
        last: dict[str, Any] = {}
        try:
            url = f"{cluster.url}/v1/jobs/{job_id}/events"
            async with http.get(url, timeout=timeout) as response:
                if response.status != 200:
                    continue
                async for raw in response.content:
                    line = raw.decode()
                    if line.startswith("data: "):
                        last = json.loads(line[6:])
        except TimeoutError:
            tracker.sse_stalls += 1
            continue
        except (aiohttp.ClientError, OSError, ValueError):
            continue
        if last.get("state") in FINAL:
            return last


async def _clients(cluster: Cluster, tracker: Tracker) -> None:
    config = cluster.config
    photo = make_photo(size=96)
    indexes = iter(range(config.jobs))
    connector = aiohttp.TCPConnector(limit=config.clients * 3)
    async with aiohttp.ClientSession(
        connector=connector, headers={"Authorization": f"Bearer {cluster.token}"}
    ) as http:

        async def client() -> None:
            for index in indexes:
                started = time.monotonic()
                job_id = await _submit(http, cluster, tracker, index, photo)
                tracker.submitted[index] = job_id
                view = await _follow(http, cluster, tracker, job_id)
                tracker.finish(index, view, time.monotonic() - started)

        await asyncio.gather(*(client() for _ in range(config.clients)))


async def _inject(cluster: Cluster, tracker: Tracker, result: SoakResult) -> None:
    """The faults, one after the other, each once the clients reach its point in the run."""
    config = cluster.config
    rng = random.Random(config.seed)
    plan: list[tuple[float, str]] = [(rng.uniform(0.3, 0.4), "service restart")]
    plan.append((rng.uniform(0.55, 0.7), "redis loss"))
    for _ in range(config.worker_kills):
        plan.append((rng.uniform(0.1, 0.85), "worker kill -9"))
    plan.sort()
    for fraction, kind in plan:
        at = max(1, int(fraction * config.jobs))
        await tracker.wait(lambda at=at: len(tracker.finished) >= at)  # type: ignore[misc]
        in_flight = tracker.in_flight()
        record = FaultRecord(kind, time.monotonic() - tracker.started, len(in_flight))
        t0 = time.monotonic()
        if kind == "worker kill -9":
            slot = rng.choice(sorted(cluster.workers))
            await asyncio.to_thread(cluster.kill_worker, slot)
            await asyncio.to_thread(cluster.start_worker, slot)
            record.detail = f"{slot} killed, replacement ready after {time.monotonic() - t0:.1f} s"
        elif kind == "service restart":
            await asyncio.to_thread(cluster.kill_service)
            await asyncio.to_thread(cluster.start_service)
            record.detail = f"service killed, serving again after {time.monotonic() - t0:.1f} s"
        else:
            await asyncio.to_thread(cluster.redis.kill)
            await asyncio.sleep(config.redis_down_s)
            await asyncio.to_thread(cluster.redis.restart)
            record.detail = f"Redis down {config.redis_down_s:g} s, back empty"
        await tracker.wait(lambda jobs=in_flight: jobs <= set(tracker.finished))  # type: ignore[misc]
        record.recovery_s = time.monotonic() - t0
        result.faults.append(record)


async def _drive(cluster: Cluster, tracker: Tracker, result: SoakResult) -> None:
    clients = asyncio.create_task(_clients(cluster, tracker))
    faults = asyncio.create_task(_inject(cluster, tracker, result))
    async with asyncio.timeout(cluster.config.max_seconds):
        await clients
        await faults


def _check_store_and_media(cluster: Cluster, tracker: Tracker, result: SoakResult) -> None:
    config = cluster.config
    with sqlite3.connect(f"file:{cluster.data_dir / 'jobs.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT id, state, run_dir, idempotency_key FROM jobs").fetchall()
        clips = dict(db.execute("SELECT job_id, COUNT(*) FROM variations GROUP BY job_id"))
    states: dict[str, int] = {}
    for _, state, _, _ in rows:
        states[state] = states.get(state, 0) + 1
    keys = {key for *_, key in rows}
    ids = {job_id for job_id, *_ in rows}
    result.checks["every job done, one row each"] = (
        len(rows) == config.jobs and states == {"done": config.jobs} and len(keys) == config.jobs,
        f"{len(rows)} rows for {config.jobs} jobs, states {states}",
    )
    views_done = sum(1 for v in tracker.finished.values() if v.get("state") == "done")
    served = all(
        len(v.get("variations", [])) == config.variations for v in tracker.finished.values()
    )
    result.checks["clients saw every job done with its variations"] = (
        views_done == config.jobs and served,
        f"{views_done} of {config.jobs} done over SSE",
    )
    wrong_clips = [job_id for job_id in ids if clips.get(job_id) != config.variations]
    problems: list[str] = []
    media = cluster.data_dir / "media"
    on_disk = {p.name for p in media.iterdir()} if media.is_dir() else set()
    orphans = sorted(on_disk - ids)
    for job_id, _, run_dir, _ in rows:
        directory = media / job_id
        if not directory.is_dir():
            problems.append(f"{job_id}: no media")
            continue
        runs = sorted(p.name for p in directory.iterdir() if p.name.startswith("run-"))
        others = sorted(p.name for p in directory.iterdir() if not p.name.startswith("run-"))
        if run_dir is None or runs != [Path(run_dir).name]:
            problems.append(f"{job_id}: runs {runs} (kept {run_dir})")
            continue
        mp4 = sorted((directory / runs[0]).glob("variation-*.mp4"))
        if len(mp4) != config.variations:
            problems.append(f"{job_id}: {len(mp4)} clips")
        if others != ["input.png"]:
            problems.append(f"{job_id}: stray files {others}")
    result.checks["one set of clips per job, no duplicates"] = (
        not problems and not wrong_clips,
        f"{len(problems)} job directories wrong {problems[:3]}, "
        f"{len(wrong_clips)} jobs with a wrong clip count",
    )
    result.checks["no orphaned media"] = (
        not orphans,
        f"{len(orphans)} directories without a job {orphans[:3]}",
    )


def _check_logs(cluster: Cluster, result: SoakResult) -> None:
    logs = cluster.logs()
    tracebacks = sum(log.count("Traceback") for log in logs)
    nogroup = sum(log.count("NOGROUP") for log in logs)
    result.takeovers = sum(log.count("took over a job") for log in logs)
    result.duplicate_runs = sum(log.count("discarded own result") for log in logs)
    first = next((log for log in logs if "Traceback" in log), "")
    excerpt = first[first.find("Traceback") :].splitlines()[:30] if first else []
    result.checks["no tracebacks, no NOGROUP spam"] = (
        tracebacks == 0 and nogroup <= 2 * len(logs),
        f"{tracebacks} tracebacks, {nogroup} NOGROUP lines in {len(logs)} logs"
        + ("\n    " + "\n    ".join(excerpt) if excerpt else ""),
    )


def _check_trends(cluster: Cluster, tracker: Tracker, sampler: Sampler, result: SoakResult) -> None:
    config = cluster.config
    warm_at = tracker.started + config.warmup_fraction * result.elapsed_s
    result.trends = sampler.trends(tracker.started, warm_at, 0.25 * result.elapsed_s)
    rss_bad = [t for t in result.trends if t.rss_growth > config.rss_tolerance]
    fd_bad = [t for t in result.trends if t.fds_end - t.fds_warm > config.fd_tolerance]
    roles = {t.role for t in result.trends}
    result.checks["RSS flat after warm-up"] = (
        not rss_bad and {"service", "worker-1", "worker-2"} <= roles,
        f"within {100 * config.rss_tolerance:g} %: "
        + ", ".join(f"{t.role} {100 * t.rss_growth:+.1f} %" for t in result.trends),
    )
    result.checks["open fds flat"] = (
        not fd_bad,
        ", ".join(f"{t.role} {t.fds_warm:.0f}→{t.fds_end:.0f}" for t in result.trends),
    )


def run(config: SoakConfig, root: Path) -> SoakResult:
    """One soak run in ``root`` (created, left in place for its logs)."""
    result = SoakResult(config)
    with Sampler() as sampler:
        cluster = Cluster(root, config, sampler)
        try:
            cluster.start_service()
            cluster.start_worker("worker-1")
            cluster.start_worker("worker-2")
            tracker = Tracker()

            async def main() -> None:
                tracker.started = time.monotonic()
                tracker.changed = asyncio.Event()
                await _drive(cluster, tracker, result)

            try:
                asyncio.run(main())
            except TimeoutError:
                result.checks["finished within the time bound"] = (
                    False,
                    f"{len(tracker.finished)} of {config.jobs} jobs after {config.max_seconds} s",
                )
            result.elapsed_s = time.monotonic() - tracker.started
            result.jobs = len(tracker.finished)
            result.latencies_s = list(tracker.latencies.values())
            result.sse_reconnects = tracker.sse_reconnects
            result.sse_stalls = tracker.sse_stalls
            result.submit_retries = tracker.submit_retries
            result.checks["no SSE stream hung"] = (
                tracker.sse_stalls == 0,
                f"{tracker.sse_stalls} streams silent for {SSE_STALL_S:g} s",
            )
            _check_trends(cluster, tracker, sampler, result)
        finally:
            cluster.stop()
    _check_logs(cluster, result)
    if result.jobs == config.jobs:
        _check_store_and_media(cluster, tracker, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = SoakConfig()
    parser.add_argument("--jobs", type=int, default=defaults.jobs)
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--sleep-s", type=float, default=defaults.sleep_s)
    parser.add_argument("--lease-s", type=float, default=defaults.lease_s)
    parser.add_argument("--worker-kills", type=int, default=defaults.worker_kills)
    parser.add_argument("--redis-down-s", type=float, default=defaults.redis_down_s)
    parser.add_argument("--max-seconds", type=float, default=defaults.max_seconds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it (logs)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 10 or args.clients < 1:
        parser.error("--jobs must be at least 10 and --clients at least 1")
    config = SoakConfig(
        jobs=args.jobs,
        clients=args.clients,
        sleep_s=args.sleep_s,
        lease_s=args.lease_s,
        worker_kills=args.worker_kills,
        redis_down_s=args.redis_down_s,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    if args.keep is not None:
        result = run(config, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="livingphoto-soak-") as tmp:
            result = run(config, Path(tmp))
    print(json.dumps(result.summary(), indent=2) if args.json else result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
