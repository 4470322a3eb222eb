"""Progressive delivery: the service reports each take the moment it is encoded, scored and
checked (``event: take`` on the job's stream; listed in ``GET /v1/jobs/{id}`` while it runs)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from servicekit import (
    get_job,
    job_request,
    make_photo,
    running_service,
    sse_stream,
    submit,
    wait_for,
)

from generation.service.guard import Guard
from generation.service.jobs import EventKind, TakeRecord, WorkerEvent
from livingphoto.errors import PolicyRefusal, UsageError


def _is_mp4(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] == b"ftyp"


async def test_each_take_is_listed_and_downloadable_while_the_job_runs(tmp_path: Path) -> None:
    # The sleep backend streams its takes: one every 1.5 s, so the job is still running when
    # the first take event arrives.
    async with (
        running_service(tmp_path, sleep_seconds=4.5, workers=1) as svc,
        svc.session() as http,
    ):
        status, job, _ = await submit(http, svc, job_request(variations=3), make_photo())
        assert status == 202
        job_id = job["job_id"]
        seen: list[tuple[str, dict[str, Any]]] = []
        during: dict[str, Any] | None = None
        clip = b""
        async with http.get(f"{svc.url}/v1/jobs/{job_id}/events") as response:
            name = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    seen.append((name, data))
                    if name == "take" and during is None:
                        during = await get_job(http, svc, job_id)
                        async with http.get(svc.url + data["url"]) as got:
                            assert got.status == 200
                            assert got.headers["Content-Type"] == "video/mp4"
                            clip = await got.read()
        takes = [data for name, data in seen if name == "take"]
        assert [t["index"] for t in takes] == [1, 2, 3]
        for take in takes:
            assert take["job_id"] == job_id
            assert take["url"] == f"/v1/jobs/{job_id}/variations/{take['index']}"
            assert set(take["scores"]) >= {"identity", "loop_seam", "flicker", "motion"}
        # Every take event comes before the job is done; the done event ranks them all.
        done_at = next(i for i, (n, d) in enumerate(seen) if n == "job" and d["state"] == "done")
        assert all(i < done_at for i, (n, _) in enumerate(seen) if n == "take")
        final = seen[-1][1]
        assert final["state"] == "done"
        assert sorted(v["rank"] for v in final["variations"]) == [1, 2, 3]
        # While running, the job object listed the finished take (no rank yet) ...
        assert during is not None and during["state"] == "running"
        assert [v["index"] for v in during["variations"]][:1] == [1]
        assert "rank" not in during["variations"][0]
        # ... and its clip was already downloadable.
        assert _is_mp4(clip)


async def test_a_take_not_yet_finished_is_not_downloadable(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, sleep_seconds=3.0, workers=1) as svc,
        svc.session() as http,
    ):
        _, job, _ = await submit(http, svc, job_request(variations=3), make_photo())
        job_id = job["job_id"]
        async with http.get(f"{svc.url}/v1/jobs/{job_id}/variations/3") as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_found"
        stream = await sse_stream(http, svc, job_id)
        assert [d["index"] for n, d in stream if n == "take"] == [1, 2, 3]


def test_take_events_cross_redis_as_flat_fields() -> None:
    take = TakeRecord(index=2, path="jobs/x/run-1/variation-2.mp4", seed=8, scores={"motion": 0.5})
    event = WorkerEvent("a" * 32, EventKind.TAKE, take=take, worker="w1")
    back = WorkerEvent.from_fields(event.to_fields())
    assert back == event
    assert (
        WorkerEvent.from_fields(WorkerEvent("b" * 32, EventKind.PROGRESS).to_fields()).take is None
    )


class _ScriptedClipCheck:
    """Stands in for ``Guard.check_clips``: records each call's clips and budget; a clip named
    in ``refuse`` is refused, one named in ``unreadable`` cannot be read once."""

    def __init__(self, refuse: str = "", unreadable: str = "") -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.refuse = refuse
        self.unreadable = unreadable

    async def __call__(self, clips: list[Path], requester: Any, budget: int = 8) -> None:
        names = [clip.name for clip in clips]
        self.calls.append((names, budget))
        await asyncio.sleep(0.05)
        if self.unreadable in names:
            self.unreadable = ""
            raise UsageError("the clip could not be read")
        if self.refuse in names:
            raise PolicyRefusal("nsfw", "the output looks explicit")


async def _run_three_takes(tmp_path: Path, check: _ScriptedClipCheck) -> dict[str, Any]:
    async with (
        running_service(tmp_path, sleep_seconds=0.6, workers=1) as svc,
        svc.session() as http,
    ):
        status, job, _ = await submit(http, svc, job_request(variations=3), make_photo())
        assert status == 202, job
        return await wait_for(http, svc, job["job_id"], within_s=20)


async def test_each_take_is_checked_once_as_it_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = _ScriptedClipCheck()
    monkeypatch.setattr(Guard, "check_clips", check)
    done = await _run_three_takes(tmp_path, check)
    assert done["state"] == "done"
    # One call per take with its share of the frame budget; the final check repeats none.
    assert sorted(check.calls) == [([f"variation-{k}.mp4"], 2) for k in (1, 2, 3)]


async def test_a_take_refused_by_its_check_refuses_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = _ScriptedClipCheck(refuse="variation-2.mp4")
    monkeypatch.setattr(Guard, "check_clips", check)
    done = await _run_three_takes(tmp_path, check)
    assert done["state"] == "refused" and done["variations"] == []
    assert len(check.calls) == 3


async def test_a_take_whose_check_could_not_read_it_is_checked_again_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = _ScriptedClipCheck(unreadable="variation-1.mp4")
    monkeypatch.setattr(Guard, "check_clips", check)
    done = await _run_three_takes(tmp_path, check)
    assert done["state"] == "done"
    assert [names for names, _ in check.calls].count(["variation-1.mp4"]) == 2


async def test_a_check_that_breaks_fails_the_job_instead_of_leaving_it_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(guard: Guard, clips: list[Path], requester: Any, budget: int = 8) -> None:
        raise RuntimeError("the classifier crashed")

    monkeypatch.setattr(Guard, "check_clips", broken)
    done = await _run_three_takes(tmp_path, _ScriptedClipCheck())
    assert done["state"] == "failed" and "checking the output failed" in done["error"]
