"""The v1 HTTP API against the real service on 127.0.0.1 (embedded queue, sleep backend)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from images import astronaut_bytes
from servicekit import (
    REDIS_URL,
    RunningService,
    files_under,
    get_job,
    job_request,
    make_photo,
    running_service,
    running_worker,
    sse_events,
    submit,
    wait_for,
)
from yarl import URL

from generation.service.app import GUARD, SCHEDULER


def _is_mp4(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] == b"ftyp"


async def test_concurrent_jobs_stream_progress_and_download(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, sleep_seconds=0.3, workers=2) as svc,
        svc.session() as http,
    ):
        photo = make_photo()
        submitted = [
            await submit(http, svc, job_request(user_id=f"user{i}", variations=2), photo)
            for i in range(4)
        ]
        assert all(status == 202 for status, _, _ in submitted)
        ids = [job["job_id"] for _, job, _ in submitted]
        assert len(set(ids)) == 4
        streams = await asyncio.gather(*(sse_events(http, svc, job_id) for job_id in ids))
        for job_id, events in zip(ids, streams, strict=True):
            assert events[-1]["state"] == "done", events[-1]["error"]
            assert all(e["job_id"] == job_id for e in events)
            progress = [e["progress"] for e in events]
            assert progress == sorted(progress)
            assert events[-1]["progress"] == 1.0
            variations = events[-1]["variations"]
            assert [v["index"] for v in variations] == [1, 2]
            for variation in variations:
                async with http.get(svc.url + variation["url"]) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"] == "video/mp4"
                    assert _is_mp4(await response.read())
        assert any(len(events) > 2 for events in streams)  # progress came in between


async def test_healthz_needs_no_token_and_everything_else_does(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{svc.url}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        wrong = {"Authorization": "Bearer not-the-token"}
        for method, path, headers in [
            ("GET", "/metrics", {}),
            ("GET", "/v1/openapi.json", {}),
            ("POST", "/v1/jobs", {}),
            ("GET", "/v1/jobs/" + "0" * 32, wrong),
            ("DELETE", "/v1/users/test/u1", {"Authorization": svc.token}),
            ("GET", "/v1/users/test/u1/consent", wrong),
        ]:
            async with anonymous.request(method, svc.url + path, headers=headers) as response:
                assert response.status == 401, path
                body = await response.json()
                assert body["error"] == "unauthorized" and body["message"]
                assert response.headers["WWW-Authenticate"] == "Bearer"


BAD_REQUESTS: list[tuple[str, Any, bytes | None, int]] = [
    ("missing image", job_request(), None, 400),
    ("not an image", job_request(), b"%PDF-1.4 definitely not a photo", 400),
    ("empty image", job_request(), b"", 400),
    ("invalid json", "{not json", b"photo", 400),
    ("json not an object", "[1, 2]", b"photo", 400),
    ("unknown field", job_request(colour="blue"), b"photo", 400),
    (
        "unknown requester field",
        job_request(requester={"platform": "t", "user_id": "1", "x": 1}),
        b"p",
        400,
    ),
    ("negative variations", job_request(variations=-1), b"photo", 400),
    ("too many variations", job_request(variations=99), b"photo", 400),
    ("variations not integer", job_request(variations="3"), b"photo", 400),
    ("boolean seconds", job_request(seconds=True), b"photo", 400),
    ("missing requester", {"prompt": "blink"}, b"photo", 400),
    ("bad platform", job_request(platform="../etc"), b"photo", 400),
    ("empty prompt", job_request(prompt="  "), b"photo", 400),
    ("huge prompt", job_request(prompt="blink " * 200), b"photo", 400),
    ("bad adjust", job_request(parent={"job_id": "0" * 32, "adjust": "spin"}), None, 400),
    ("unknown parent", job_request(parent={"job_id": "0" * 32, "adjust": "less"}), None, 400),
    ("traversal parent", job_request(parent={"job_id": "../../etc/passwd"}), None, 400),
]


async def _expect_json_error(response: aiohttp.ClientResponse, status: int, what: str) -> None:
    assert response.status == status, (what, await response.text())
    body = await response.json()
    assert set(body) >= {"error", "message"}, what
    assert "\n" not in body["message"] and "Traceback" not in body["message"]


async def test_bad_requests_get_4xx_json(tmp_path: Path) -> None:
    photo = make_photo()
    async with running_service(tmp_path) as svc, svc.session() as http:
        for what, request, image, status in BAD_REQUESTS:
            form = aiohttp.FormData()
            if image is not None:
                real = photo if image == b"photo" or image == b"p" else image
                form.add_field("image", real, filename="x.png", content_type="image/png")
            text = request if isinstance(request, str) else json.dumps(request)
            form.add_field("request", text, content_type="application/json")
            async with http.post(f"{svc.url}/v1/jobs", data=form) as response:
                await _expect_json_error(response, status, what)
        # Not multipart, an extra part, no request part.
        async with http.post(f"{svc.url}/v1/jobs", json=job_request()) as response:
            await _expect_json_error(response, 400, "json body")
        form = aiohttp.FormData()
        form.add_field("image", photo, filename="x.png")
        async with http.post(f"{svc.url}/v1/jobs", data=form) as response:
            await _expect_json_error(response, 400, "no request part")
        form.add_field("request", json.dumps(job_request()))
        form.add_field("extra", "x")
        async with http.post(f"{svc.url}/v1/jobs", data=form) as response:
            await _expect_json_error(response, 400, "extra part")
        # Job ids never name files.
        for path in [
            "/v1/jobs/..%2F..%2Fetc%2Fpasswd",
            "/v1/jobs/../../etc/passwd",
            "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd/variations/1",
            "/v1/jobs/ZZZ/events",
            "/v1/jobs/" + "0" * 32,
            "/v1/jobs/" + "0" * 32 + "/variations/1",
            "/nowhere",
        ]:
            url = URL(svc.url + path, encoded=True)
            async with http.get(url) as response:
                await _expect_json_error(response, 404, path)
        async with http.delete(f"{svc.url}/v1/jobs/..%2F..%2Fetc%2Fpasswd") as response:
            await _expect_json_error(response, 404, "delete traversal")
        async with http.delete(f"{svc.url}/v1/users/Bad Platform/u1") as response:
            await _expect_json_error(response, 400, "bad platform")
        async with http.put(f"{svc.url}/v1/users/test/u1/consent", data=b"{oops") as response:
            await _expect_json_error(response, 400, "consent json")
        async with http.put(f"{svc.url}/v1/users/test/u1/consent", json={"x": 1}) as response:
            await _expect_json_error(response, 400, "consent field")
        async with http.patch(f"{svc.url}/v1/jobs") as response:
            await _expect_json_error(response, 405, "method")
        # The variation index must be a number within range.
        status, job, _ = await submit(http, svc, job_request(), photo)
        await wait_for(http, svc, job["job_id"])
        for index in ["0", "abc", "99", "-1"]:
            async with http.get(f"{svc.url}/v1/jobs/{job['job_id']}/variations/{index}") as r:
                await _expect_json_error(r, 404, f"variation {index}")


async def test_a_200_mb_body_gets_413_without_being_read(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc:
        host, port = svc.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        head = (
            "POST /v1/jobs HTTP/1.1\r\n"
            f"Host: {host}\r\n"
            f"Authorization: Bearer {svc.token}\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\n"
            f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
        )
        writer.write(head.encode() + b"--xyz\r\n" + b"\0" * 65536)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)  # the server closes the connection
        writer.close()
        status_line, _, rest = response.partition(b"\r\n")
        assert b" 413 " in status_line
        body = json.loads(rest.partition(b"\r\n\r\n")[2])
        assert body["error"] == "payload_too_large"


async def test_an_oversized_photo_streamed_without_length_gets_413(tmp_path: Path) -> None:
    async with running_service(tmp_path, max_image_bytes=50_000) as svc, svc.session() as http:

        async def body() -> Any:
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            for _ in range(20):
                yield b"\x89PNG" + b"\0" * 10_000
            yield b"\r\n--b--\r\n"

        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        try:
            async with http.post(f"{svc.url}/v1/jobs", data=body(), headers=headers) as response:
                await _expect_json_error(response, 413, "streamed photo")
        except aiohttp.ClientOSError:
            pytest.fail("the service closed the connection before answering")


async def _busy(svc: RunningService, http: aiohttp.ClientSession, user: str) -> dict[str, Any]:
    status, job, _ = await submit(http, svc, job_request(user_id=user), make_photo())
    assert status == 202, job
    return job


async def test_full_queue_and_busy_user_get_429_with_retry_after(tmp_path: Path) -> None:
    async with (
        running_service(
            tmp_path, sleep_seconds=5.0, workers=1, max_queue=2, max_inflight_per_user=2
        ) as svc,
        svc.session() as http,
    ):
        first = await _busy(svc, http, "a")
        await wait_for(http, svc, first["job_id"], frozenset({"running"}))
        second = await _busy(svc, http, "a")
        assert second["position"] == 1
        # The same user is at their limit of jobs in flight.
        status, body, headers = await submit(http, svc, job_request(user_id="a"), make_photo())
        assert status == 429 and body["error"] == "rate_limited"
        assert int(headers["Retry-After"]) >= 1
        third = await _busy(svc, http, "b")
        assert third["position"] == 1  # b has not been served yet: ahead of a's second job
        assert (await get_job(http, svc, second["job_id"]))["position"] == 2
        # Two jobs wait: the queue is full for everyone.
        status, body, headers = await submit(http, svc, job_request(user_id="c"), make_photo())
        assert status == 429 and "queue is full" in body["message"]
        assert int(headers["Retry-After"]) >= 1
        async with http.get(f"{svc.url}/metrics") as response:
            text = await response.text()
        assert "livingphoto_queue_depth 2" in text
        assert 'livingphoto_refusals_total{category="queue_full"} 1' in text
        assert 'livingphoto_jobs{state="running"} 1' in text


async def test_same_idempotency_key_returns_the_same_job(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.2) as svc, svc.session() as http:
        request = job_request(idempotency_key="msg-42")
        results = await asyncio.gather(
            *(submit(http, svc, request, make_photo()) for _ in range(3))
        )
        assert {status for status, _, _ in results} == {202}
        assert len({job["job_id"] for _, job, _ in results}) == 1
        job_id = results[0][1]["job_id"]
        await wait_for(http, svc, job_id)
        status, again, _ = await submit(http, svc, request, make_photo())
        assert status == 202 and again["job_id"] == job_id and again["state"] == "done"
        # Another user's identical key is another job.
        status, other, _ = await submit(
            http, svc, job_request(user_id="u2", idempotency_key="msg-42"), make_photo()
        )
        assert status == 202 and other["job_id"] != job_id
        assert len(list((svc.data_dir / "media").iterdir())) == 2


async def test_one_busy_user_does_not_starve_others(tmp_path: Path) -> None:
    # Redis queue and no worker while the jobs arrive: nothing starts until the line is known,
    # so positions and start order do not depend on how fast this machine submits.
    async with (
        running_service(
            tmp_path,
            queue=REDIS_URL,
            sleep_seconds=0.1,
            max_inflight_per_user=20,
            rate_user_per_min=60,
        ) as svc,
        svc.session() as http,
    ):
        greedy = [await _busy(svc, http, "greedy") for _ in range(5)]
        polite = [await _busy(svc, http, "polite"), await _busy(svc, http, "other")]
        assert greedy[0]["position"] == 1
        assert polite[0]["position"] == 2  # ahead of greedy's second job
        assert polite[1]["position"] == 3
        assert (await get_job(http, svc, greedy[1]["job_id"]))["position"] == 4
        async with running_worker(svc.settings):
            finished = [await wait_for(http, svc, job["job_id"]) for job in greedy + polite]
        order = [job["job_id"] for job in sorted(finished, key=lambda j: j["started_at"])]
        greedy_ids = [job["job_id"] for job in greedy]
        polite_ids = [job["job_id"] for job in polite]
        assert order == [greedy_ids[0], *polite_ids, *greedy_ids[1:]]


async def test_cancel_reaches_a_running_job_and_a_queued_one(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, sleep_seconds=30.0, workers=1) as svc,
        svc.session() as http,
    ):
        running = await _busy(svc, http, "a")
        queued = await _busy(svc, http, "b")
        await wait_for(http, svc, running["job_id"], frozenset({"running"}))
        async with http.delete(f"{svc.url}/v1/jobs/{running['job_id']}") as response:
            assert response.status == 202
            assert (await response.json())["cancel_requested"] is True
        done = await wait_for(http, svc, running["job_id"], within_s=5)
        assert done["state"] == "cancelled"
        # The next job started; cancel it too, then a finished job stays as it is.
        await wait_for(http, svc, queued["job_id"], frozenset({"running"}))
        async with http.delete(f"{svc.url}/v1/jobs/{queued['job_id']}") as response:
            assert response.status == 202
        assert (await wait_for(http, svc, queued["job_id"], within_s=5))["state"] == "cancelled"
        async with http.delete(f"{svc.url}/v1/jobs/{queued['job_id']}") as response:
            assert response.status == 200
            assert (await response.json())["state"] == "cancelled"
        assert not list((svc.data_dir / "media" / running["job_id"]).glob("run-*"))


async def test_a_waiting_job_is_cancelled_at_once(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, sleep_seconds=30.0, workers=1) as svc,
        svc.session() as http,
    ):
        await _busy(svc, http, "a")
        waiting = await _busy(svc, http, "b")
        async with http.delete(f"{svc.url}/v1/jobs/{waiting['job_id']}") as response:
            assert response.status == 200
            assert (await response.json())["state"] == "cancelled"


async def test_a_job_past_its_time_limit_fails(tmp_path: Path) -> None:
    async with (
        running_service(tmp_path, sleep_seconds=20.0, job_timeout_s=0.3) as svc,
        svc.session() as http,
    ):
        job = await _busy(svc, http, "a")
        done = await wait_for(http, svc, job["job_id"], within_s=10)
        assert done["state"] == "failed"
        assert "limit" in done["error"]


async def test_adjustments_reuse_the_parent_photo_and_seed(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        parent = await _busy(svc, http, "a")
        parent = await wait_for(http, svc, parent["job_id"])
        chosen = parent["variations"][0]
        children = {}
        for adjust in ("less", "more", "reroll", "vary"):
            request = {
                "requester": {"platform": "test", "user_id": "a"},
                "parent": {"job_id": parent["job_id"], "variation": 1, "adjust": adjust},
            }
            status, child, _ = await submit(http, svc, request)
            assert status == 202, child
            children[adjust] = await wait_for(http, svc, child["job_id"])
        status, explicit, _ = await submit(
            http,
            svc,
            {
                "requester": {"platform": "test", "user_id": "a"},
                "parent": {"job_id": parent["job_id"], "adjust": "reroll"},
                "motion_scale": 0.8,
            },
        )
        assert status == 202 and explicit["options"]["motion_scale"] == pytest.approx(0.8)
        assert children["less"]["options"]["motion_scale"] == pytest.approx(0.6)
        assert children["more"]["options"]["motion_scale"] == pytest.approx(1.5)
        assert children["less"]["options"]["seed"] == chosen["seed"]
        assert children["reroll"]["options"]["seed"] != parent["options"]["seed"]
        assert all(c["state"] == "done" for c in children.values())
        assert children["less"]["prompt"] == parent["prompt"]
        assert children["vary"]["parent"] == {
            "job_id": parent["job_id"],
            "variation": 1,
            "adjust": "vary",
        }
        # Another user cannot adjust this job.
        request = {
            "requester": {"platform": "test", "user_id": "b"},
            "parent": {"job_id": parent["job_id"], "adjust": "reroll"},
        }
        status, _, _ = await submit(http, svc, request)
        assert status == 400


async def test_forget_deletes_every_file_of_that_user(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        mine = [await _busy(svc, http, "forgetme") for _ in range(2)]
        theirs = await _busy(svc, http, "keepme")
        for job in [*mine, theirs]:
            await wait_for(http, svc, job["job_id"])
        before = files_under(svc.data_dir / "media")
        assert any(mine[0]["job_id"] in str(p) for p in before)
        async with http.delete(f"{svc.url}/v1/users/test/forgetme") as response:
            assert response.status == 200
            report = await response.json()
        assert report["jobs_deleted"] == 2
        assert report["files_deleted"] >= 4  # photo + clip (+ summary) per job
        after = files_under(svc.data_dir)
        for job in mine:
            assert not any(job["job_id"] in str(p) for p in after)
            async with http.get(f"{svc.url}/v1/jobs/{job['job_id']}") as response:
                assert response.status == 404
        assert any(theirs["job_id"] in str(p) for p in after)
        async with http.get(f"{svc.url}/v1/users/test/forgetme/consent") as response:
            assert response.status == 200


async def test_consent_endpoints_and_revocation_deletes_media(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        request = job_request(user_id="shy")
        del request["consent"]  # the photo shows a person: consent is needed
        status, body, _ = await submit(http, svc, request, astronaut_bytes())
        assert status == 403 and body["error"] == "consent_required"
        consent_url = f"{svc.url}/v1/users/test/shy/consent"
        async with http.put(consent_url, json={"wording_version": "old-wording"}) as response:
            assert response.status == 200
            assert (await response.json())["consented"] is False  # not the current wording
        async with http.put(consent_url, json={"scope": "self"}) as response:
            assert response.status == 200
            status_body = await response.json()
            assert status_body["consented"] is True
            assert status_body["record"]["scope"] == "self"
        async with http.put(consent_url, json={"scope": "nobody"}) as response:
            assert response.status == 400
        status, job, _ = await submit(http, svc, request, astronaut_bytes())
        assert status == 202, job
        await wait_for(http, svc, job["job_id"])
        async with http.delete(consent_url) as response:
            assert response.status == 200
            revoked = await response.json()
            assert revoked["files_deleted"] >= 2 and revoked["consented"] is False
        assert not (svc.data_dir / "media" / job["job_id"]).exists()
        after = await get_job(http, svc, job["job_id"])
        assert after["media_deleted"] is True and after["variations"] == []
        async with http.get(f"{svc.url}/v1/jobs/{job['job_id']}/variations/1") as response:
            assert response.status == 410
        status, body, _ = await submit(http, svc, request, astronaut_bytes())
        assert status == 403
        child = {
            "requester": {"platform": "test", "user_id": "shy"},
            "parent": {"job_id": job["job_id"], "adjust": "more"},
        }
        status, body, _ = await submit(http, svc, child)
        assert status == 410 and body["error"] == "gone"
        async with http.get(f"{svc.url}/metrics") as response:
            assert 'livingphoto_refusals_total{category="consent_required"} 2' in (
                await response.text()
            )


async def test_retention_sweeper_deletes_old_media_and_keeps_an_audit(tmp_path: Path) -> None:
    async with (
        running_service(
            tmp_path, sleep_seconds=0.05, retention_hours=0.0, retention_sweep_s=0.1
        ) as svc,
        svc.session() as http,
    ):
        job = await _busy(svc, http, "a")
        await wait_for(http, svc, job["job_id"])
        for _ in range(100):
            if not (svc.data_dir / "media" / job["job_id"]).exists():
                break
            await asyncio.sleep(0.05)
        assert not (svc.data_dir / "media" / job["job_id"]).exists()
        async with http.get(f"{svc.url}/v1/jobs/{job['job_id']}/variations/1") as response:
            assert response.status == 410
        assert svc.app is not None
        deletions = svc.app[GUARD].moderator.audit.deletions()
        assert [d.reason for d in deletions] == ["retention"]
        assert deletions[0].counts["jobs"] == 1 and deletions[0].counts["media_files"] >= 2


async def test_a_restart_deletes_media_that_no_job_keeps(tmp_path: Path) -> None:
    # A service killed between storing a photo and recording its job leaves a directory no
    # job owns; the next start deletes it (and only it) and audits the deletion.
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        kept = await wait_for(http, svc, (await _busy(svc, http, "a"))["job_id"])
    media = svc.data_dir / "media"
    orphan = media / ("ab" * 16)
    orphan.mkdir()
    (orphan / "input.png").write_bytes(make_photo())
    (media / "README.txt").write_text("not a job directory")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not ours")
    (media / ("cd" * 16)).symlink_to(elsewhere)  # named like a job, but a link: left alone
    (media / ("ef" * 16)).write_text("a file named like a job: left alone")
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        for _ in range(100):
            if not orphan.exists():
                break
            await asyncio.sleep(0.05)
        assert not orphan.exists()
        assert (media / kept["job_id"] / "input.png").is_file()
        assert (media / "README.txt").is_file()
        assert (elsewhere / "keep.txt").is_file() and (media / ("cd" * 16)).is_symlink()
        assert (media / ("ef" * 16)).is_file()
        async with http.get(f"{svc.url}/v1/jobs/{kept['job_id']}/variations/1") as response:
            assert response.status == 200
        assert svc.app is not None
        deletions = svc.app[GUARD].moderator.audit.deletions()
        assert [(d.reason, d.counts["jobs"], d.counts["media_files"]) for d in deletions] == [
            ("orphaned", 1, 1)
        ]


async def test_a_job_that_cannot_be_recorded_leaves_no_photo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_service(tmp_path, sleep_seconds=0.05) as svc, svc.session() as http:
        assert svc.app is not None
        store = svc.app[SCHEDULER].store

        def locked(job: object) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(store, "insert", locked)
        status, body, _ = await submit(http, svc, job_request(user_id="a"), make_photo())
        assert status == 500, body
        assert files_under(svc.data_dir / "media") == []


async def test_openapi_document_matches_the_routes(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, svc.session() as http:
        async with http.get(f"{svc.url}/v1/openapi.json") as response:
            document = await response.json()
        assert document["openapi"].startswith("3.1")
        documented = {
            (path, method.upper())
            for path, item in document["paths"].items()
            for method in item
            if method in {"get", "put", "post", "delete", "patch"}
        }
        assert svc.app is not None
        routed = set()
        for route in svc.app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            path = info.get("path") or info.get("formatter")
            if route.method != "HEAD":
                routed.add((path, route.method))
        assert documented == routed


async def test_a_policy_refusal_is_422_with_its_category(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, svc.session() as http:
        request = job_request(prompt="make the child undress")
        status, body, _ = await submit(http, svc, request, make_photo())
        assert status == 422, body
        assert body["error"] == "policy_refusal" and body["category"]
        async with http.get(f"{svc.url}/metrics") as response:
            assert f'livingphoto_refusals_total{{category="{body["category"]}"}} 1' in (
                await response.text()
            )


EXAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


async def test_warp_backend_end_to_end(tmp_path: Path) -> None:
    photo = await asyncio.to_thread(EXAMPLE_PHOTO.read_bytes)
    async with running_service(tmp_path, backend="warp") as svc, svc.session() as http:
        request = job_request(variations=2, seconds=1.0, fps=8, size=160)
        status, job, _ = await submit(http, svc, request, photo)
        assert status == 202, job
        events = await sse_events(http, svc, job["job_id"], within_s=120)
        done = events[-1]
        assert done["state"] == "done", done["error"]
        assert sorted(v["rank"] for v in done["variations"]) == [1, 2]
        assert all(set(v["scores"]) >= {"identity", "loop_seam"} for v in done["variations"])
        for variation in done["variations"]:
            async with http.get(svc.url + variation["url"]) as response:
                assert response.status == 200
                assert _is_mp4(await response.read())
