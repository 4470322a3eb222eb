"""``POST /v1/inspect`` and consent only for human faces, over HTTP against the real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from images import EXAMPLES, astronaut_bytes, text_as_jpg
from servicekit import RunningService, files_under, job_request, running_service, submit

CAT = (EXAMPLES / "chelsea.jpg").read_bytes()


async def inspect(
    http: aiohttp.ClientSession, svc: RunningService, photo: bytes | None, name: str = "image"
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    if photo is not None:
        form.add_field(name, photo, filename="photo.jpg", content_type="image/jpeg")
    else:
        form.add_field("other", b"x", filename="other.txt", content_type="text/plain")
    async with http.post(f"{svc.url}/v1/inspect", data=form) as response:
        return response.status, await response.json()


async def test_inspect_reports_the_subject_and_stores_nothing(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc, svc.session() as http:
        before = files_under(svc.data_dir)
        status, body = await inspect(http, svc, astronaut_bytes())
        assert status == 200, body
        subject = body["subject"]
        assert subject["kind"] == "face" and subject["chosen"] == 0
        assert len(subject["faces"]) == 1
        x, y, w, h = subject["faces"][0]
        # Eileen Collins' face in the 512 x 512 picture: about 90 px, centred near (220, 120).
        assert 180 <= x + w / 2 <= 260 and 80 <= y + h / 2 <= 160 and 60 <= w <= 130
        assert body["warnings"] == []
        status, body = await inspect(http, svc, CAT)
        assert status == 200 and body["subject"]["kind"] != "face"
        assert files_under(svc.data_dir) == before  # nothing written for an inspection


async def test_inspect_bad_requests(tmp_path: Path) -> None:
    async with running_service(tmp_path, max_image_bytes=40_000) as svc:
        async with svc.session() as http:
            status, body = await inspect(http, svc, text_as_jpg())
            assert status == 400 and body["error"] == "bad_request", body
            status, body = await inspect(http, svc, b"")
            assert status == 400 and "empty" in body["message"]
            status, body = await inspect(http, svc, None)
            assert status == 400 and "other" in body["message"]
            status, body = await inspect(http, svc, astronaut_bytes())
            assert status == 413 and body["error"] == "payload_too_large", body
            async with http.post(f"{svc.url}/v1/inspect", json={"image": "x"}) as response:
                assert response.status == 400
        async with aiohttp.ClientSession() as anonymous:
            form = aiohttp.FormData()
            form.add_field("image", astronaut_bytes(), filename="a.jpg")
            async with anonymous.post(f"{svc.url}/v1/inspect", data=form) as response:
                assert response.status == 401


async def test_consent_is_asked_only_when_a_human_face_is_shown(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.01) as svc, svc.session() as http:
        request = job_request(user_id="catowner")
        del request["consent"]
        status, body, _ = await submit(http, svc, request, CAT)
        assert status == 202, body
        status, body, _ = await submit(http, svc, request, astronaut_bytes())
        assert status == 403 and body["error"] == "consent_required"


async def test_job_face_choice_is_checked(tmp_path: Path) -> None:
    async with running_service(tmp_path, sleep_seconds=0.01) as svc, svc.session() as http:
        status, body, _ = await submit(http, svc, job_request(face=0), astronaut_bytes())
        assert status == 202, body
        status, body, _ = await submit(http, svc, job_request(face=1), astronaut_bytes())
        assert status == 400 and "out of range" in body["message"], body
        for bad in (-1, "0", 1.5, True, 64):
            status, body, _ = await submit(http, svc, job_request(face=bad), astronaut_bytes())
            assert status == 400 and "face" in body["message"], (bad, body)
