"""Redis is transport, the job store is the record: losing Redis costs seconds, never a job.

Each test runs its own ``redis-server`` (no persistence) on a spare port, never the shared one.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from redisserver import RedisServer
from servicekit import (
    ServiceProcess,
    job_request,
    make_photo,
    running_service,
    running_worker,
    sse_events,
    start_worker_process,
    submit,
    wait_for,
)

NO_LIMITS = {
    "LIVINGPHOTO_RATE_USER_PER_MIN": "0",
    "LIVINGPHOTO_RATE_CHAT_PER_MIN": "0",
    "LIVINGPHOTO_DAILY_QUOTA": "0",
}


async def _states(http: aiohttp.ClientSession, url: str, job_ids: list[str]) -> list[str]:
    states = []
    for job_id in job_ids:
        async with http.get(f"{url}/v1/jobs/{job_id}") as response:
            states.append((await response.json())["state"])
    return states


async def _until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, f"not {what} after {within_s} s"
        await asyncio.sleep(0.05)


async def test_every_job_is_done_once_after_redis_restarts_empty_under_two_workers(
    tmp_path: Path,
) -> None:
    server = RedisServer.start(tmp_path / "redis")
    env = {**NO_LIMITS, "LIVINGPHOTO_SLEEP_SECONDS": "1.5", "LIVINGPHOTO_QUEUE_LEASE_S": "1.0"}
    workers: list[ServiceProcess] = []
    try:
        async with running_service(
            tmp_path, queue=server.url, env=env, sleep_seconds=1.5, lease_s=1.0
        ) as svc:
            workers = [
                await asyncio.to_thread(
                    start_worker_process,
                    tmp_path,
                    server.url,
                    svc.redis_prefix,
                    svc.data_dir,
                    env=env,
                )
                for _ in range(2)
            ]
            async with svc.session() as http:
                jobs = []
                for i in range(6):
                    request = job_request(user_id=f"u{i}", variations=2, seed=10 + i)
                    status, job, _ = await submit(http, svc, request, make_photo(seed=i))
                    assert status == 202, job
                    jobs.append(job["job_id"])

                async def two_running() -> bool:
                    return (await _states(http, svc.url, jobs)).count("running") == 2

                await _until(two_running, 30, "running on both workers")
                watcher = asyncio.create_task(sse_events(http, svc, jobs[0], within_s=90))
                server.kill()  # queued and running jobs are in flight; Redis forgets them all
                await asyncio.sleep(1.0)
                await asyncio.to_thread(server.restart)  # back, empty

                for job_id in jobs:
                    done = await wait_for(http, svc, job_id, within_s=60)
                    assert done["state"] == "done", done["error"]
                    assert [v["index"] for v in done["variations"]] == [1, 2]
                    for variation in done["variations"]:
                        async with http.get(svc.url + variation["url"]) as response:
                            assert response.status == 200
                            assert (await response.read())[4:8] == b"ftyp"
                    media = svc.data_dir / "media" / job_id
                    runs = sorted(p for p in media.iterdir() if p.name.startswith("run-"))
                    assert len(runs) == 1, f"{job_id}: {runs}"  # one set of clips: once
                    assert len(list(runs[0].glob("variation-*.mp4"))) == 2
                events = await watcher  # the SSE watcher did not hang: it saw the end
                assert events[-1]["state"] == "done"
                async with http.get(f"{svc.url}/metrics") as response:
                    metrics = await response.text()
                assert 'livingphoto_queue_backend_up{backend="redis"} 1' in metrics
                assert 'livingphoto_queue_resets_total{backend="redis"} 1' in metrics
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
        server.stop()
    for worker in workers:
        log = worker.log()
        assert "Traceback" not in log, log
        assert log.count("NOGROUP") <= 3, log  # recreated at once, not logged every second


async def test_submissions_wait_in_the_store_while_redis_is_unreachable(tmp_path: Path) -> None:
    server = RedisServer.start(tmp_path / "redis")
    try:
        async with (
            running_service(
                tmp_path, queue=server.url, env=NO_LIMITS, sleep_seconds=0.3, lease_s=1.0
            ) as svc,
            running_worker(svc.settings),
            svc.session() as http,
            aiohttp.ClientSession() as anonymous,
        ):
            server.kill()

            async def degraded() -> bool:
                async with anonymous.get(f"{svc.url}/healthz") as response:
                    assert response.status == 200  # liveness: restarting would not help
                    return bool((await response.json())["status"] == "degraded")

            await _until(degraded, 10, "degraded")
            async with anonymous.get(f"{svc.url}/healthz") as response:
                health = (await response.json())["queue"]
            assert health["backend"] == "redis" and health["up"] is False
            async with http.get(f"{svc.url}/metrics") as response:
                assert 'livingphoto_queue_backend_up{backend="redis"} 0' in await response.text()

            status, job, _ = await submit(http, svc, job_request(user_id="a"), make_photo())
            assert status == 202, job  # accepted into the store, sent when Redis is back
            assert job["state"] == "queued" and "Redis is unreachable" in job["stage"]
            status, other, _ = await submit(http, svc, job_request(user_id="b"), make_photo())
            assert status == 202
            async with http.delete(f"{svc.url}/v1/jobs/{other['job_id']}") as response:
                assert response.status == 200  # never sent: cancelled in the store at once
                assert (await response.json())["state"] == "cancelled"

            await asyncio.sleep(1.5)  # a while without Redis
            await asyncio.to_thread(server.restart)
            done = await wait_for(http, svc, job["job_id"], within_s=30)
            assert done["state"] == "done", done["error"]
            await _until(lambda: _not(degraded), 10, "healthy again")
            async with http.get(f"{svc.url}/metrics") as response:
                text = await response.text()
            assert 'livingphoto_queue_backend_up{backend="redis"} 1' in text
            assert 'livingphoto_queue_backend_outages_total{backend="redis"} 1' in text
    finally:
        server.stop()


async def _not(check: Any) -> bool:
    return not await check()


async def test_a_cancel_asked_while_redis_is_down_reaches_the_worker_after_it_restarts_empty(
    tmp_path: Path,
) -> None:
    server = RedisServer.start(tmp_path / "redis")
    try:
        async with running_service(
            tmp_path, queue=server.url, env=NO_LIMITS, sleep_seconds=20.0, lease_s=1.0
        ) as svc:
            async with running_worker(svc.settings), svc.session() as http:
                status, job, _ = await submit(http, svc, job_request(), make_photo())
                assert status == 202
                await wait_for(http, svc, job["job_id"], frozenset({"running"}))
                server.kill()
                async with http.delete(f"{svc.url}/v1/jobs/{job['job_id']}") as response:
                    assert response.status == 202  # noted; told to the workers when Redis is back
                    assert (await response.json())["cancel_requested"] is True
                await asyncio.to_thread(server.restart)
                done = await wait_for(http, svc, job["job_id"], within_s=30)
                assert done["state"] == "cancelled"
                media = svc.data_dir / "media" / job["job_id"]
                assert [p.name for p in media.iterdir()] == ["input.png"]
            async with aiohttp.ClientSession() as anonymous:
                async with anonymous.get(f"{svc.url}/healthz") as response:
                    body = json.loads(await response.text())
                assert body["status"] == "ok" and body["queue"]["resets"] == 1
    finally:
        server.stop()
