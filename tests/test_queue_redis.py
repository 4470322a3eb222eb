"""Scale-out on a real Redis server: a consumer group of workers, take-over, dead letters."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from pathlib import Path

import redis.asyncio as aioredis
from servicekit import (
    REDIS_URL,
    build_settings,
    delete_redis_prefix,
    get_job,
    job_request,
    make_photo,
    running_service,
    running_worker,
    sse_events,
    start_service_process,
    start_worker_process,
    submit,
    wait_for,
)


async def _events(prefix: str, job_id: str) -> list[dict[str, str]]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        entries = await client.xrange(f"{prefix}:job:{job_id}:events")
    finally:
        await client.aclose()
    return [{str(k): str(v) for k, v in (fields or {}).items()} for _, fields in entries or []]


async def _started_by(prefix: str, job_id: str, count: int, within_s: float = 40.0) -> list[str]:
    """Consumers that started the job, waiting until ``count`` starts were reported."""
    deadline = time.monotonic() + within_s
    while True:
        started = [e["worker"] for e in await _events(prefix, job_id) if e["kind"] == "started"]
        if len(started) >= count:
            return started
        assert time.monotonic() < deadline, f"job {job_id} was started {len(started)} times"
        await asyncio.sleep(0.05)


async def test_jobs_flow_through_redis_workers(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, queue=REDIS_URL, sleep_seconds=0.3, lease_s=2.0) as svc,
        running_worker(svc.settings),
        running_worker(svc.settings),
        svc.session() as http,
    ):
        jobs = [
            (await submit(http, svc, job_request(user_id=f"u{i}"), make_photo()))[1]
            for i in range(4)
        ]
        streams = await asyncio.gather(*(sse_events(http, svc, job["job_id"]) for job in jobs))
        for events in streams:
            assert events[-1]["state"] == "done", events[-1]["error"]
            async with http.get(svc.url + events[-1]["variations"][0]["url"]) as r:
                assert r.status == 200 and (await r.read())[4:8] == b"ftyp"
        # Cancel reaches a job running on a worker.
        _, long_job, _ = await submit(
            http, svc, job_request(user_id="slow", seconds=6.0), make_photo()
        )
        await wait_for(http, svc, long_job["job_id"], frozenset({"running"}))
        async with http.delete(f"{svc.url}/v1/jobs/{long_job['job_id']}") as response:
            assert response.status in (200, 202)
        await wait_for(http, svc, long_job["job_id"], within_s=30)


async def test_a_dead_workers_job_is_taken_over_and_completes_once(tmp_path: Path) -> None:
    async with running_service(
        tmp_path, queue=REDIS_URL, sleep_seconds=3.0, lease_s=1.0, max_deliveries=3
    ) as svc:
        env = {"LIVINGPHOTO_SLEEP_SECONDS": "3.0", "LIVINGPHOTO_QUEUE_LEASE_S": "1.0"}
        workers = [
            start_worker_process(tmp_path, REDIS_URL, svc.redis_prefix, svc.data_dir, env=env)
            for _ in range(2)
        ]
        try:
            async with svc.session() as http:
                status, job, _ = await submit(http, svc, job_request(), make_photo())
                assert status == 202
                first = (await _started_by(svc.redis_prefix, job["job_id"], 1))[0]
                victim = next(w for w in workers if w.info["consumer"] == first)
                survivor = next(w for w in workers if w is not victim)
                victim.kill()
                done = await wait_for(http, svc, job["job_id"], within_s=30)
                assert done["state"] == "done", done["error"]
                assert done["attempts"] == 2
                events = await _events(svc.redis_prefix, job["job_id"])
                starts = [e["worker"] for e in events if e["kind"] == "started"]
                assert starts == [first, survivor.info["consumer"]]
                finals = [e for e in events if e["kind"] in ("done", "failed", "cancelled")]
                assert len(finals) == 1 and finals[0]["kind"] == "done"
                result = json.loads(finals[0]["result"])
                media = svc.data_dir / "media" / job["job_id"]
                runs = [p for p in media.iterdir() if p.name.startswith("run-")]
                assert [r.name for r in runs] == [Path(result["run_dir"]).name]
                assert (await get_job(http, svc, job["job_id"]))["state"] == "done"
        finally:
            for worker in workers:
                worker.stop()
        assert all("Traceback" not in w.log() for w in workers)


async def test_a_job_that_keeps_killing_workers_is_dead_lettered(tmp_path: Path) -> None:
    async with running_service(
        tmp_path, queue=REDIS_URL, sleep_seconds=30.0, lease_s=0.5, max_deliveries=2
    ) as svc:
        env = {
            "LIVINGPHOTO_SLEEP_SECONDS": "30",
            "LIVINGPHOTO_QUEUE_LEASE_S": "0.5",
            "LIVINGPHOTO_QUEUE_MAX_DELIVERIES": "2",
        }
        async with svc.session() as http:
            status, job, _ = await submit(http, svc, job_request(), make_photo())
            assert status == 202
            for attempt in (1, 2):
                worker = start_worker_process(
                    tmp_path, REDIS_URL, svc.redis_prefix, svc.data_dir, env=env
                )
                await _started_by(svc.redis_prefix, job["job_id"], attempt)
                worker.kill()
            last = start_worker_process(
                tmp_path, REDIS_URL, svc.redis_prefix, svc.data_dir, env=env
            )
            try:
                done = await wait_for(http, svc, job["job_id"], within_s=40)
            finally:
                last.stop()
        assert done["state"] == "failed"
        assert done["error"].startswith("dead letter")
        media = svc.data_dir / "media" / job["job_id"]
        assert [p.name for p in media.iterdir()] == ["input.png"]  # no attempt left behind


async def test_gone_workers_are_pruned_from_the_group_and_the_roster() -> None:
    from generation.service.redis_queue import (
        GROUP,
        RedisKeys,
        connect,
        ensure_group,
        live_workers,
        prune_consumers,
    )

    keys = RedisKeys(f"lptest:{secrets.token_hex(6)}")
    try:
        async with connect(REDIS_URL) as client:
            await ensure_group(client, keys)
            await client.xgroup_createconsumer(keys.jobs, GROUP, "gone-worker")
            await client.zadd(
                keys.workers, {"gone-worker": time.time() - 3600, "alive": time.time()}
            )
            assert await live_workers(client, keys, lease_s=5.0) == 1
            assert await client.zcard(keys.workers) == 1  # the long-dead entry was dropped
            await asyncio.sleep(0.02)  # idle time is counted in milliseconds
            assert await prune_consumers(client, keys, idle_s=0.001) == 1
            assert await client.xinfo_consumers(keys.jobs, GROUP) == []
    finally:
        await delete_redis_prefix(REDIS_URL, keys.prefix)


async def test_a_redis_job_survives_kill_9_of_the_service(tmp_path: Path) -> None:
    prefix = f"lptest:{secrets.token_hex(6)}"
    env = {"LIVINGPHOTO_REDIS_PREFIX": prefix, "LIVINGPHOTO_QUEUE_LEASE_S": "1.0"}
    settings = build_settings(
        tmp_path, queue=REDIS_URL, redis_prefix=prefix, lease_s=1.0, sleep_seconds=2.0
    )
    try:
        async with running_worker(settings):
            first = await asyncio.to_thread(
                start_service_process, tmp_path, "sleep", REDIS_URL, env=env
            )
            try:
                async with first.session() as http:
                    status, job, _ = await submit(http, first, job_request(), make_photo())
                    assert status == 202
                    await wait_for(http, first, job["job_id"], frozenset({"running"}))
            finally:
                first.kill()
            # The worker finishes while the service is down; the new service catches up.
            second = await asyncio.to_thread(
                start_service_process, tmp_path, "sleep", REDIS_URL, token=first.token, env=env
            )
            try:
                async with second.session() as http:
                    done = await wait_for(http, second, job["job_id"], within_s=30)
                    assert done["state"] == "done", done["error"]
                    async with http.get(second.url + done["variations"][0]["url"]) as r:
                        assert r.status == 200
            finally:
                await asyncio.to_thread(second.stop)
    finally:
        await delete_redis_prefix(REDIS_URL, prefix)


async def test_a_running_job_is_cancelled_promptly_whatever_the_lease(tmp_path: Path) -> None:
    # The claim is renewed every third of the lease (5 s here), but a cancel request is looked
    # for every CANCEL_POLL_S: a 3 s job cancelled after it started ends cancelled, not done.
    async with (
        running_service(tmp_path, queue=REDIS_URL, sleep_seconds=3.0, lease_s=15.0) as svc,
        running_worker(svc.settings),
        svc.session() as http,
    ):
        status, job, _ = await submit(http, svc, job_request(), make_photo())
        assert status == 202, job
        await wait_for(http, svc, job["job_id"], frozenset({"running"}), within_s=10)
        async with http.delete(f"{svc.url}/v1/jobs/{job['job_id']}") as response:
            assert response.status == 202
        done = await wait_for(http, svc, job["job_id"], within_s=10)
        assert done["state"] == "cancelled", done
