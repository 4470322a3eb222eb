"""A service and a worker started before their Redis: they start degraded, not with an error.

In Kubernetes the service pod may start before the Redis pod, or while Redis restarts. The
service then serves and accepts jobs into its store; the worker waits with back-off; both join
when Redis answers. Each test runs its own ``redis-server`` on a spare port, started late.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from redisserver import RedisServer, free_port
from servicekit import (
    ServiceProcess,
    job_request,
    make_photo,
    start_service_process,
    start_worker_process,
    submit,
    wait_for,
)

ENV = {
    "LIVINGPHOTO_RATE_USER_PER_MIN": "0",
    "LIVINGPHOTO_RATE_CHAT_PER_MIN": "0",
    "LIVINGPHOTO_DAILY_QUOTA": "0",
    "LIVINGPHOTO_QUEUE_LEASE_S": "1.0",
    "LIVINGPHOTO_SLEEP_SECONDS": "0.3",
}
UNREACHABLE = "Redis unreachable"


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{url}/healthz") as response:
        assert response.status == 200  # liveness and readiness: restarting would not help
        body: dict[str, Any] = await response.json()
        return body


def _logged(directory: Path, pattern: str, text: str) -> bool:
    return any(text in p.read_text(errors="replace") for p in directory.glob(pattern))


def _spawn_worker(tmp_path: Path, url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (tmp_path / "worker.log").open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "livingphoto", "worker", "--queue", url],
            cwd=tmp_path,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


async def _until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"not {what} after {within_s} s"
        await asyncio.sleep(0.05)


async def test_a_job_submitted_before_redis_starts_is_done_once_when_it_does(
    tmp_path: Path,
) -> None:
    server = RedisServer(free_port(), tmp_path / "redis")  # not started yet
    (tmp_path / "redis").mkdir()
    env = {**ENV, "LIVINGPHOTO_REDIS_PREFIX": f"lptest:{secrets.token_hex(6)}"}
    prefix = env["LIVINGPHOTO_REDIS_PREFIX"]
    svc = await asyncio.to_thread(start_service_process, tmp_path, queue=server.url, env=env)
    worker: ServiceProcess | None = None
    # The worker's ready file is written once it joined the group, i.e. after Redis starts.
    joining = asyncio.create_task(
        asyncio.to_thread(start_worker_process, tmp_path, server.url, prefix, svc.data_dir, env=env)
    )
    try:
        health = await _health(svc.url)
        assert health["status"] == "degraded", health
        assert health["queue"]["backend"] == "redis" and health["queue"]["up"] is False
        async with svc.session() as http:
            async with http.get(f"{svc.url}/metrics") as response:
                assert 'livingphoto_queue_backend_up{backend="redis"} 0' in await response.text()
            status, job, _ = await submit(http, svc, job_request(), make_photo())
            assert status == 202, job  # into the store; sent when Redis answers
            assert job["state"] == "queued" and "Redis is unreachable" in job["stage"]

            async def worker_waits() -> bool:
                return await asyncio.to_thread(_logged, tmp_path, "worker-*.log", UNREACHABLE)

            await _until(worker_waits, 20, "waiting for Redis in the worker")
            await asyncio.sleep(1.0)  # a few back-off turns: still logged once
            assert not joining.done()

            await asyncio.to_thread(server.restart)  # Redis starts, empty
            worker = await asyncio.wait_for(joining, 30)
            done = await wait_for(http, svc, job["job_id"], within_s=20)
            assert done["state"] == "done", done["error"]
            media = svc.data_dir / "media" / job["job_id"]
            assert len([p for p in media.iterdir() if p.name.startswith("run-")]) == 1  # once

            async def healthy() -> bool:
                return bool((await _health(svc.url))["status"] == "ok")

            await _until(healthy, 10, "healthy")
            async with http.get(f"{svc.url}/metrics") as response:
                text = await response.text()
            assert 'livingphoto_queue_backend_up{backend="redis"} 1' in text
            assert 'livingphoto_queue_backend_outages_total{backend="redis"} 1' in text
    finally:
        if server.proc is None:  # failed before Redis started: let the worker join, then stop
            await asyncio.to_thread(server.restart)
        if worker is None:
            worker = await asyncio.wait_for(joining, 30)
        worker_code = await asyncio.to_thread(worker.stop)
        service_code = await asyncio.to_thread(svc.stop)
        server.stop()
    assert (worker_code, service_code) == (0, 0)
    for log in (worker.log(), svc.log()):
        assert "Traceback" not in log, log
        assert log.count(UNREACHABLE) == 1, log  # the outage logged once, its end once
        assert log.count("reachable again") == 1, log


async def test_service_and_worker_without_redis_stop_cleanly(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {**ENV, "LIVINGPHOTO_REDIS_PREFIX": f"lptest:{secrets.token_hex(6)}"}
    svc = await asyncio.to_thread(start_service_process, tmp_path, queue=url, env=env)
    worker = await asyncio.to_thread(_spawn_worker, tmp_path, url, env)
    try:

        async def worker_waits() -> bool:
            return await asyncio.to_thread(_logged, tmp_path, "worker.log", UNREACHABLE)

        await _until(worker_waits, 20, "waiting for Redis in the worker")
        assert worker.poll() is None
        assert (await _health(svc.url))["status"] == "degraded"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker_code = await asyncio.to_thread(worker.wait, 15)
        service_code = await asyncio.to_thread(svc.stop)
    assert (worker_code, service_code) == (0, 0)
    for log in ((tmp_path / "worker.log").read_text(), svc.log()):
        assert "Traceback" not in log and log.count(UNREACHABLE) == 1, log
