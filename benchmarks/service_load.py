"""Load benchmark of the generation service on loopback.

Usage::

    .venv/bin/python benchmarks/service_load.py                 # full run (a few minutes)
    .venv/bin/python benchmarks/service_load.py --runs 1 --clients 1,8 --memory-jobs 100

Starts ``livingphoto service`` as a separate process (embedded queue) and drives it with 1, 8
and 32 concurrent clients, each submitting a job (multipart POST) and following it over
Server-Sent Events until it is done, as the chat bots do. Backends: ``sleep`` (fixed duration)
and ``warp`` (CPU), each with ``--workers`` embedded worker slots (default 2: this is a CPU
box; more concurrent jobs only fight over the cores). Prints, per backend and concurrency, the median over ``--runs`` runs of: requests/s,
p50/p95 latency (submit -> final event), service overhead per job (latency minus the time the
worker spent in ``Animator.animate``, minus the time the job waited in line for a free slot,
``dispatched_at - created_at``) and peak RSS
of the service process. Moderation (NSFW scoring of the photo and of sampled output frames,
timed by the service as ``moderation_s``, which includes the wait for one of the service's
``LIVINGPHOTO_MODERATION_THREADS`` moderation threads) is reported on its own ("mod p50")
and not counted as overhead. Then checks that memory stays flat over ``--memory-jobs`` jobs
(sleep backend, tiny duration): RSS growth after warm-up must stay under 10%.

Goals: overhead p95 < 50 ms at 8 clients; RSS growth < 10% over 500 jobs. On a small CPU box
the clients' first requests arrive at once and their moderation (CPU) queues; ``--ramp-s``
spreads the start to measure the steady state.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servicekit import ServiceProcess, job_form, job_request, make_photo, start_service_process

BENCH_ENV = {
    "LIVINGPHOTO_RATE_USER_PER_MIN": "0",
    "LIVINGPHOTO_RATE_CHAT_PER_MIN": "0",
    "LIVINGPHOTO_DAILY_QUOTA": "0",
    "LIVINGPHOTO_MAX_QUEUE": "10000",
    "LIVINGPHOTO_MAX_INFLIGHT_PER_USER": "1000",
    "LIVINGPHOTO_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class JobTiming:
    latency_s: float
    generation_s: float
    wait_s: float
    moderation_s: float

    @property
    def overhead_s(self) -> float:
        """The service's own time: not generating, not waiting, not scoring with moderation."""
        return self.latency_s - self.generation_s - self.wait_s - self.moderation_s


@dataclass(frozen=True)
class RunResult:
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    overhead_p50_ms: float
    overhead_p95_ms: float
    moderation_p50_ms: float
    peak_rss_mb: float


class RssSampler:
    """Samples the RSS of a process every 20 ms in a thread; ``peak`` and ``last`` in bytes."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self.last = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> int:
        self.last = self._process.memory_info().rss
        self.peak = max(self.peak, self.last)
        return self.last

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.02)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def one_job(
    http: aiohttp.ClientSession, svc: ServiceProcess, photo: bytes, user: str
) -> JobTiming:
    started = time.perf_counter()
    request = job_request(user_id=user, variations=1, seconds=1.0, fps=8, size=128)
    async with http.post(f"{svc.url}/v1/jobs", data=job_form(request, photo)) as response:
        body = await response.json()
        if response.status != 202:
            raise RuntimeError(f"submit failed: {response.status} {body}")
    final: dict[str, Any] = {}
    async with http.get(f"{svc.url}/v1/jobs/{body['job_id']}/events") as response:
        async for raw in response.content:
            line = raw.decode()
            if line.startswith("data: "):
                final = json.loads(line[6:])
    latency = time.perf_counter() - started
    if final.get("state") != "done":
        raise RuntimeError(f"job ended {final.get('state')}: {final.get('error')}")
    # Time in line waiting for a free worker slot (not the service's own time).
    wait = max(0.0, (final["dispatched_at"] or final["created_at"]) - final["created_at"])
    return JobTiming(latency, float(final["generation_s"]), wait, float(final["moderation_s"]))


async def drive(
    svc: ServiceProcess, clients: int, jobs_per_client: int, ramp_s: float = 0.0
) -> list[JobTiming]:
    """``clients`` concurrent clients; client i starts ``i * ramp_s / clients`` s late."""
    photo = make_photo(size=256)
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with svc.session(connector=connector) as http:

        async def client(index: int) -> list[JobTiming]:
            await asyncio.sleep(index * ramp_s / clients)
            return [
                await one_job(http, svc, photo, f"bench-{index}-{j}")
                for j in range(jobs_per_client)
            ]

        results = await asyncio.gather(*(client(i) for i in range(clients)))
    return [timing for timings in results for timing in timings]


def run_config(
    backend: str, clients: int, jobs_per_client: int, sleep_s: float, workers: int, ramp_s: float
) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **BENCH_ENV,
            "LIVINGPHOTO_SLEEP_SECONDS": str(sleep_s),
            "LIVINGPHOTO_WORKERS": str(workers),
        }
        svc = start_service_process(Path(tmp), backend=backend, env=env, timeout=120)
        try:
            asyncio.run(drive(svc, 1, 1))  # warm-up: imports, models, first ffmpeg
            with RssSampler(svc.proc.pid) as rss:
                started = time.perf_counter()
                timings = asyncio.run(drive(svc, clients, jobs_per_client, ramp_s))
                elapsed = time.perf_counter() - started
        finally:
            svc.stop()
    latencies = [t.latency_s * 1000 for t in timings]
    overheads = [t.overhead_s * 1000 for t in timings]
    return RunResult(
        requests_per_s=len(timings) / elapsed,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        overhead_p50_ms=percentile(overheads, 50),
        overhead_p95_ms=percentile(overheads, 95),
        moderation_p50_ms=percentile([t.moderation_s * 1000 for t in timings], 50),
        peak_rss_mb=rss.peak / 2**20,
    )


def memory_check(jobs: int, clients: int) -> tuple[float, float, float]:
    """RSS after warm-up, at the end, and growth in % over ``jobs`` tiny sleep jobs."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**BENCH_ENV, "LIVINGPHOTO_SLEEP_SECONDS": "0.01", "LIVINGPHOTO_WORKERS": "4"}
        svc = start_service_process(Path(tmp), backend="sleep", env=env, timeout=120)
        try:
            with RssSampler(svc.proc.pid) as rss:
                warm = max(clients, jobs // 10)
                asyncio.run(drive(svc, clients, max(1, warm // clients)))
                baseline = rss.sample()
                asyncio.run(drive(svc, clients, max(1, (jobs - warm) // clients)))
                time.sleep(0.5)
                end = rss.sample()
        finally:
            svc.stop()
    return baseline / 2**20, end / 2**20, 100.0 * (end - baseline) / baseline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated concurrency levels")
    parser.add_argument("--backends", default="sleep,warp")
    parser.add_argument("--sleep-seconds", type=float, default=0.2, help="sleep backend duration")
    parser.add_argument("--jobs-per-client", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="embedded worker slots")
    parser.add_argument("--memory-jobs", type=int, default=500)
    parser.add_argument(
        "--ramp-s",
        type=float,
        default=0.0,
        help="spread the clients' first requests over this many seconds (0: all at once)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    header = (
        f"{'backend':<8}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'ovh p50':>9}{'ovh p95':>9}{'mod p50':>9}{'peak RSS MB':>13}"
    )
    print(
        f"medians of {args.runs} run(s); sleep backend = {args.sleep_seconds} s per job; "
        f"{args.workers} worker slots; clients start within {args.ramp_s:g} s"
    )
    print(header)
    print("-" * len(header))
    for backend in args.backends.split(","):
        for clients in levels:
            workers = args.workers
            runs = [
                run_config(
                    backend, clients, args.jobs_per_client, args.sleep_seconds, workers, args.ramp_s
                )
                for _ in range(args.runs)
            ]

            def med(name: str, results: list[RunResult] = runs) -> float:
                return float(statistics.median(getattr(r, name) for r in results))

            print(
                f"{backend:<8}{clients:>8}{med('requests_per_s'):>9.2f}{med('p50_ms'):>9.0f}"
                f"{med('p95_ms'):>9.0f}{med('overhead_p50_ms'):>9.1f}"
                f"{med('overhead_p95_ms'):>9.1f}{med('moderation_p50_ms'):>9.0f}"
                f"{med('peak_rss_mb'):>13.0f}",
                flush=True,
            )
    baseline, end, growth = memory_check(args.memory_jobs, clients=8)
    verdict = "OK" if growth < 10 else "OVER GOAL"
    print(
        f"\nmemory over {args.memory_jobs} jobs (sleep 0.01 s, 8 clients): "
        f"RSS {baseline:.0f} MB after warm-up -> {end:.0f} MB at the end ({growth:+.1f}%) {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
