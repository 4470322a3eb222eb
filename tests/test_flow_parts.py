"""The flow's building blocks without a chat platform: state, texts, reaction/setting parsing,
and the service client's mapping of HTTP errors (against a small aiohttp server on loopback)."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.client import JobRequest, ServiceClient, ServiceError
from bot.flow import apply_setting, reaction_pick
from bot.state import BotState, Draft, JobRecord, UserSettings
from bot.texts import ENGLISH as texts
from livingphoto.errors import ConsentRequired, PolicyRefusal, RateLimited, UsageError
from moderation.requester import Requester

ALICE = Requester("telegram", "1001", "1001")


def job(job_id: str = "a" * 32, user_id: str = "1001") -> JobRecord:
    return JobRecord(
        job_id=job_id,
        chat_id="1001",
        chat_kind="private",
        user_id=user_id,
        reply_to="5",
        image_ref="FILE1",
        image_name="photo.jpg",
        prompt="blink",
        variations=2,
        seconds=1.0,
        motion_scale=1.0,
    )


def test_state_dedups_events_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "bot" / "telegram.sqlite3"
    with BotState.open(path) as state:
        assert state.claim_event("u1")
        assert not state.claim_event("u1")
        state.save_settings("1001", UserSettings(variations=4, seconds=2.5, motion="subtle"))
        state.add_job(job())
        state.add_delivery("a" * 32, 1, "77")
    with BotState.open(path) as state:
        assert not state.claim_event("u1")
        assert state.user_settings("1001", UserSettings()) == UserSettings(4, 2.5, "subtle")
        assert [j.job_id for j in state.jobs_in_phase("running")] == ["a" * 32]
        assert [(j.job_id, k) for j, k in state.jobs_by_message("1001", "77")] == [("a" * 32, 1)]
        assert state.jobs_by_message("999", "77") == []  # another chat's message id


def test_state_made_before_request_options_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE drafts (draft_id TEXT PRIMARY KEY, chat_id TEXT NOT NULL,"
            " chat_kind TEXT NOT NULL, user_id TEXT NOT NULL, reply_to TEXT NOT NULL,"
            " image_ref TEXT NOT NULL, image_name TEXT NOT NULL, prompt TEXT NOT NULL,"
            " waiting TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        db.execute(
            "INSERT INTO drafts VALUES ('d1', '1', 'private', '7', '', 'F', 'p.jpg', 'blink',"
            " 'consent', ?)",
            (time.time(),),
        )
        db.commit()
    with BotState.open(path) as state:
        old = state.draft("d1")
        assert old is not None and (old.prompt, old.variations, old.seconds) == ("blink", 0, 0.0)
        state.add_draft(
            Draft("d2", "1", "private", "7", "", "F", "p.jpg", "", "motion", 1.0, 2, 2.5)
        )
        new = state.draft("d2")
        assert new is not None and (new.variations, new.seconds) == (2, 2.5)


def test_callbacks_reject_forged_and_expired_tokens(tmp_path: Path) -> None:
    with BotState.open(tmp_path / "s.sqlite3") as state:
        live = state.new_callback("pick", "a" * 32, 2, ttl_s=60)
        stale = state.new_callback("pick", "a" * 32, 1, ttl_s=1)
        assert len(live) <= 16
        callback = state.callback(live, time.time())
        assert callback is not None and (callback.action, callback.k) == ("pick", 2)
        assert state.callback("forged", time.time()) is None
        assert state.callback(stale, time.time() + 5) is None
        state.drop_callbacks("a" * 32)
        assert state.callback(live, time.time()) is None


def test_a_job_is_picked_once_and_forget_removes_everything(tmp_path: Path) -> None:
    with BotState.open(tmp_path / "s.sqlite3") as state:
        state.add_job(job())
        assert not state.claim_pick("a" * 32, 1)  # not delivered yet
        state.set_delivered("a" * 32, "90", vote_deadline=0.0)
        assert state.claim_pick("a" * 32, 1)
        assert not state.claim_pick("a" * 32, 2)
        state.set_vote("a" * 32, "1002", 2)
        state.save_settings("1001", UserSettings())
        counts = state.forget_user("1001")
        assert counts == {"requests": 1, "votes": 0, "settings": 1}
        assert state.job("a" * 32) is None


@pytest.mark.parametrize(
    ("emojis", "in_message", "expected"),
    [
        (["👍"], [2], 2),
        (["❤"], [1], 1),
        (["🔥"], [1, 2, 3], None),  # a like on a message with several takes is ambiguous
        (["2️⃣"], [1], 2),  # a number names any take of the job
        (["9️⃣"], [1], None),  # ... that exists
        (["😢"], [1], None),
        ([], [1], None),
    ],
)
def test_reactions_point_at_a_take(
    emojis: list[str], in_message: list[int], expected: int | None
) -> None:
    assert reaction_pick(emojis, in_message, [1, 2, 3]) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["variations", "4"], UserSettings(variations=4)),
        (["seconds", "2.5"], UserSettings(seconds=2.5)),
        (["motion", "strong"], UserSettings(motion="strong")),
        (["variations", "0"], None),
        (["variations", "many"], None),
        (["seconds", "9"], None),
        (["seconds", "abc"], None),
        (["motion", "wild"], None),
        (["colour", "blue"], None),
        (["variations"], None),
    ],
)
def test_settings_are_validated(words: list[str], expected: UserSettings | None) -> None:
    assert apply_setting(UserSettings(), words) == expected


def test_texts() -> None:
    assert texts.caption(2, {"identity": 1.0, "loop_seam": 0.0}).startswith(
        "Take 2 · likeness ●●●●● · loop ●●●●●"
    )
    assert "AI-generated" in texts.caption(1, {})
    assert texts.rate_limited(30, queue_full=True) == (
        "The queue is full right now. Please try again in 30 seconds."
    )
    assert "in 5 minutes" in texts.rate_limited(290, queue_full=False)
    assert texts.refused("Refused (violence): no.", "Try a blink.") == (
        "Sorry, I can't animate that (violence): no.\nTry a blink."
    )
    assert texts.forgot(0, 0, 0, 0) == "Done. I had nothing stored about you."
    assert texts.forgot(1, 2, 1, 0) == (
        "Done. Deleted 1 request, 2 stored files, 1 consent record. Nothing about you is kept."
    )
    assert texts.queued(1) != texts.queued(4)
    assert "50%" in texts.running(0.5)
    # Each platform is told its own way of asking.
    for text in (texts.help_text("discord"), texts.need_photo("discord")):
        assert "/animate photo:" in text and "motion:" in text and "mention me" in text
    assert "caption /animate" in texts.help_text("telegram")
    assert "mention me" in texts.need_motion("discord")
    assert texts.need_motion("telegram").startswith("Add the motion after /animate")
    assert "/settings change:seconds 2-5" in texts.settings_bad("discord")
    assert "/settings seconds 2-5" in texts.settings_summary(3, 3.0, "normal", "telegram")


# -- the service client's error mapping ------------------------------------------------------
async def _answer(request: web.Request) -> web.Response:
    status = int(request.match_info["status"])
    body = {
        "error": "x",
        "message": f"answer {status}",
        "category": "violence",
        "suggestion": "Try a blink.",
    }
    headers = {"Retry-After": "42"} if status == 429 else {}
    return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def erring() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{status}/v1/{tail:.*}", _answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_client_maps_error_statuses(erring: str) -> None:
    request = JobRequest(prompt="blink", requester=ALICE, consent_attested=False)
    async with aiohttp.ClientSession() as http:

        def client(status: int) -> ServiceClient:
            return ServiceClient(http, f"{erring}/{status}", "token")

        with pytest.raises(UsageError, match="answer 400"):
            await client(400).submit(b"jpeg", "p.jpg", request)
        with pytest.raises(ConsentRequired):
            await client(403).submit(b"jpeg", "p.jpg", request)
        with pytest.raises(PolicyRefusal) as refusal:
            await client(422).submit(b"jpeg", "p.jpg", request)
        assert (refusal.value.category, refusal.value.suggestion) == ("violence", "Try a blink.")
        with pytest.raises(RateLimited) as limited:
            await client(429).submit(b"jpeg", "p.jpg", request)
        assert limited.value.retry_after_s == 42.0
        with pytest.raises(ServiceError) as failed:
            await client(500).status("a" * 32)
        assert failed.value.status == 500
        with pytest.raises(ServiceError) as gone:
            await client(404).download("a" * 32, 1)
        assert gone.value.status == 404


async def test_client_reports_an_unreachable_service() -> None:
    async with aiohttp.ClientSession() as http:
        client = ServiceClient(http, "http://127.0.0.1:9", "token")  # discard port: refused
        with pytest.raises(ServiceError, match="unreachable"):
            await client.consent_get(ALICE)


def test_request_json_is_what_the_service_accepts() -> None:
    body = JobRequest(prompt="blink", requester=ALICE, consent_attested=False, size=128).to_json()
    assert set(body) == {"prompt", "variations", "seconds", "size", "requester", "consent"}
    strong = JobRequest(prompt="blink", requester=ALICE, consent_attested=False, motion_scale=1.4)
    assert strong.to_json()["motion_scale"] == 1.4
    assert body["requester"] == {"platform": "telegram", "user_id": "1001", "chat_id": "1001"}
