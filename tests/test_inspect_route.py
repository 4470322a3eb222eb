"""``POST /v1/inspect`` and consent only for human faces, over HTTP against the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from images import EXAMPLES, astronaut_bytes, text_as_jpg
from servicekit import (
    RunningService,
    files_under,
    job_request,
    running_service,
    submit,
    wait_for,
)

from generation import restore
from generation.faces import FaceModel
from generation.service import guard as guard_module
from generation.service import scheduler
from generation.service.execute import JobRunner
from generation.service.guard import Guard
from generation.service.inspect_route import (
    REMEMBER_PHOTOS,
    REMEMBER_S,
    SubjectService,
    photo_digest,
)
from generation.service.jobs import JobTicket, RenderOptions
from generation.subject import Subject, find_subject
from livingphoto.errors import UsageError
from moderation import gate as gate_module
from moderation import nsfw
from moderation.intake import load_image

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


async def test_a_photo_is_searched_once_from_inspection_to_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bot inspects the photo, then submits it: the submission reuses what the inspection
    # found, and the worker gets the faces (landmarks too) with the job.
    searches: list[int] = []
    real_find_heads = FaceModel.find_heads

    def counted(model: FaceModel, rgb: Any) -> Any:
        if rgb.any():  # not the worker's warm-up run on a blank picture
            searches.append(rgb.shape[0])
        return real_find_heads(model, rgb)

    monkeypatch.setattr(FaceModel, "find_heads", counted)
    tickets: list[JobTicket] = []
    real_inspection = JobRunner._inspection

    def seen(runner: JobRunner, ticket: JobTicket, photo: bytes) -> Any:
        tickets.append(ticket)
        return real_inspection(runner, ticket, photo)

    monkeypatch.setattr(JobRunner, "_inspection", seen)
    # The old-scan check is made once too: beside the submission's moderation check.
    analyses: list[int] = []
    real_analyse = restore.analyse

    def analysed(rgb: Any) -> restore.DamageReport:
        analyses.append(rgb.shape[0])
        return real_analyse(rgb)

    monkeypatch.setattr(restore, "analyse", analysed)
    monkeypatch.setattr(scheduler, "analyse", analysed)
    scores = _count_photo_scores(monkeypatch)
    async with (
        running_service(tmp_path, backend="warp") as svc,
        svc.session() as http,
    ):
        status, body = await inspect(http, svc, astronaut_bytes())
        assert status == 200 and body["subject"]["kind"] == "face"
        request = job_request(variations=1, seconds=1.0, size=128)
        status, job, _ = await submit(http, svc, request, astronaut_bytes())
        assert status == 202, job
        done = await wait_for(http, svc, job["job_id"], within_s=60)
        assert done["state"] == "done", done
    assert searches == [512]  # the inspection's search only
    assert len(tickets) == 1 and tickets[0].subject is not None
    sent = Subject.from_record(tickets[0].subject)
    assert sent.kind == "face" and len(sent.faces[0].landmarks) == 5
    assert sent.faces[0].to_json() == body["subject"]["faces"][0]
    assert analyses == [512]  # beside the inspection's search, not in the worker
    assert scores == {"inspection": 1, "submission": 0}  # the NSFW score, made once too
    assert tickets[0].damage is not None
    expected = real_analyse(load_image(astronaut_bytes()).rgb)
    assert restore.DamageReport.from_record(tickets[0].damage) == expected


def _count_photo_scores(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the NSFW detector scores a photo while it is inspected and when submitted."""
    counts = {"inspection": 0, "submission": 0}

    def counted(where: str, real: Any) -> Any:
        def score(detector: Any, image: Any) -> float:
            counts[where] += 1
            return float(real(detector, image))

        return score

    monkeypatch.setattr(guard_module, "checked_score", counted("inspection", nsfw.checked_score))
    monkeypatch.setattr(gate_module, "checked_score", counted("submission", nsfw.checked_score))
    return counts


async def test_a_photo_whose_early_score_failed_is_scored_when_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(guard: Guard, image: Any) -> float:
        raise RuntimeError("the moderation threads are gone")

    monkeypatch.setattr(Guard, "score_photo", broken)
    scores = _count_photo_scores(monkeypatch)
    async with running_service(tmp_path) as svc, svc.session() as http:
        status, body = await inspect(http, svc, astronaut_bytes())
        assert status == 200 and body["subject"]["kind"] == "face"
        status, job, _ = await submit(http, svc, job_request(), astronaut_bytes())
        assert status == 202, job
    assert scores == {"inspection": 0, "submission": 1}


async def test_what_an_inspection_found_is_remembered_briefly_and_for_few_photos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    searches: list[int] = []
    real_find_heads = FaceModel.find_heads

    def counted(model: FaceModel, rgb: Any) -> Any:
        searches.append(1)
        return real_find_heads(model, rgb)

    monkeypatch.setattr(FaceModel, "find_heads", counted)
    now = [0.0]
    service = SubjectService(20_000_000, 40_000_000, clock=lambda: now[0])
    try:
        photo = astronaut_bytes()
        rgb = load_image(photo).rgb
        await service.inspect(photo)
        assert len(searches) == 1
        assert (await service.describe(rgb, photo=photo)).kind == "face"
        assert len(searches) == 1  # remembered
        with pytest.raises(UsageError, match="out of range"):
            await service.describe(rgb, face=3, photo=photo)
        await service.describe(rgb, photo=photo + b"\x00")  # other bytes: searched
        assert len(searches) == 2
        now[0] = REMEMBER_S + 1.0
        await service.describe(rgb, photo=photo)  # forgotten after REMEMBER_S
        assert len(searches) == 3
        await service.inspect(photo)
        for k in range(REMEMBER_PHOTOS):  # the oldest is forgotten first
            service._remember(photo_digest(bytes([k])), Subject("none", (), None))
        await service.describe(rgb, photo=photo)
        assert len(searches) == 5
    finally:
        service.close()


def test_a_damage_record_round_trips_through_a_ticket_and_bad_ones_are_refused() -> None:
    report = restore.analyse(load_image(astronaut_bytes()).rgb)
    record = json.loads(json.dumps(report.to_record()))
    assert restore.DamageReport.from_record(record) == report
    ticket = JobTicket.from_json(
        json.loads(
            json.dumps(
                JobTicket(
                    "0" * 32, "blink", RenderOptions(), "media/x/input.png", 60.0, None, record
                ).to_json()
            )
        )
    )
    assert ticket.damage == record
    for bad in ({**record, "dust": "many"}, {k: v for k, v in record.items() if k != "grain"}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            restore.DamageReport.from_record(bad)


def test_a_subject_record_round_trips_and_bad_ones_are_refused() -> None:
    model = FaceModel()
    rgb = load_image(astronaut_bytes()).rgb
    subject = find_subject(model, rgb)
    record = json.loads(json.dumps(subject.to_record()))
    assert Subject.from_record(record) == subject
    for bad in (
        {**record, "kind": "robot"},
        {**record, "chosen": 5},
        {**record, "faces": [{"box": [1, 2, 0, 4]}]},
        {**record, "faces": [{"box": [1, 2]}]},
        {"faces": []},
        {**record, "faces": [{"box": [1, 2, 3, 4], "left_eye": "x"}]},
    ):
        with pytest.raises((KeyError, TypeError, ValueError)):
            Subject.from_record(bad)
