"""The real python-telegram-bot application against a Bot API emulator and a real service.

Every scenario drives the bot through ``tests/emulators/telegram_api.py`` (over HTTP on
127.0.0.1) and asserts what the emulator received. The service runs on loopback with the warp
backend (``tests/servicekit.py``); clips are tiny (2 takes, 1 s, 128 px) to stay fast.
"""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from emulators.inspecting_service import InspectingService
from emulators.telegram_api import Call, ChatRef, TelegramEmulator, User
from images import astronaut_bytes, jpeg_bytes
from PIL import Image
from servicekit import running_service

from bot.state import BotState
from bot.telegram.app import run_bot
from bot.texts import ENGLISH as texts
from bot.texts import for_language
from livingphoto.settings import Settings

PHOTO = astronaut_bytes()  # a human face: the consent question is asked
TAKES = 2


@dataclass
class Harness:
    tg: TelegramEmulator
    svc: Any
    tmp: Path
    vote_window_s: float = 60.0

    def settings(self) -> Settings:
        env = {
            "TELEGRAM_BOT_TOKEN": self.tg.token,
            "TELEGRAM_API_BASE_URL": self.tg.api_base_url,
            "TELEGRAM_FILE_BASE_URL": self.tg.file_base_url,
            "LIVINGPHOTO_SERVICE_URL": self.svc.url,
            "LIVINGPHOTO_SERVICE_TOKEN": self.svc.token,
            "LIVINGPHOTO_DATA_DIR": str(self.tmp / "bot-data"),
            "LIVINGPHOTO_VOTE_WINDOW_S": str(self.vote_window_s),
            "LIVINGPHOTO_BOT_VARIATIONS": str(TAKES),
            "LIVINGPHOTO_BOT_SECONDS": "1",
            "LIVINGPHOTO_BOT_CLIP_SIZE": "128",
        }
        return Settings.from_env(env, dotenv_path=self.tmp / "absent.env")

    @asynccontextmanager
    async def bot(self) -> AsyncIterator[None]:
        """Run the bot until the block ends (then stop it cleanly and re-raise its errors)."""
        stop = asyncio.Event()
        polls = self.tg.polls_started
        task = asyncio.create_task(run_bot(self.settings(), stop))
        waiter = asyncio.create_task(self.tg.wait_until(lambda: self.tg.polls_started > polls))
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)

    def state_jobs(self) -> list[Any]:
        with BotState.open(self.settings().bot.state_path("telegram")) as state:
            return state.jobs_in_phase("running", "delivered", "picked", "ended")

    async def service_consent(self, user: User) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.svc.token}"}
        url = f"{self.svc.url}/v1/users/telegram/{user.id}/consent"
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

    async def service_job(self, job_id: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.svc.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.svc.url}/v1/jobs/{job_id}", headers=headers) as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body


@asynccontextmanager
async def harness(tmp_path: Path, backend: str = "warp", **service: Any) -> AsyncIterator[Harness]:
    async with (
        TelegramEmulator() as tg,
        running_service(tmp_path / "service", backend=backend, **service) as svc,
    ):
        yield Harness(tg, svc, tmp_path)


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with harness(tmp_path) as running:
        yield running


# -- helpers ---------------------------------------------------------------------------------
def to_chat(chat: ChatRef) -> Any:
    return lambda c: c.chat_id() == chat.id


async def wait_text(h: Harness, chat: ChatRef, needle: str, count: int = 1) -> Call:
    def has(c: Call) -> bool:
        return c.chat_id() == chat.id and needle in c.text

    calls = await h.tg.wait_for("sendMessage", count=count, where=has)
    return calls[-1]


async def wait_edit(h: Harness, chat: ChatRef, needle: str) -> Call:
    calls = await h.tg.wait_for(
        "editMessageText", where=lambda c: c.chat_id() == chat.id and needle in c.text
    )
    return calls[-1]


async def consent(h: Harness, user: User, chat: ChatRef, count: int = 1) -> None:
    """Answer the consent question (the ``count``-th one in ``chat``) with yes."""
    question = await wait_text(h, chat, "please confirm", count)
    h.tg.press(user, question.result, question.buttons()[texts.consent_yes])
    await wait_edit(h, chat, texts.consent_recorded)


async def delivered(h: Harness, chat: ChatRef, rounds: int = 1) -> tuple[list[Call], Call]:
    """Wait for ``rounds`` deliveries in ``chat``; the last round's clips and keyboard."""
    keyboard = await wait_text(h, chat, "Pick your favourite", rounds)
    takes = [c for c in h.tg.calls_of("sendAnimation", chat) if c.text.startswith("Take ")]
    assert len(takes) == TAKES * rounds
    return takes[-TAKES:], keyboard


def assert_every_callback_answered_once(tg: TelegramEmulator) -> None:
    pressed = [u["callback_query"]["id"] for u in _injected(tg) if "callback_query" in u]
    assert pressed, "no button was pressed"
    assert {q: tg.answered.get(q) for q in pressed} == dict.fromkeys(pressed, 1)


def _injected(tg: TelegramEmulator) -> list[dict[str, Any]]:
    return [u for c in tg.calls if c.method == "getUpdates" for u in (c.result or [])]


# -- scenarios -------------------------------------------------------------------------------
async def test_happy_path_photo_to_final_clip(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_text(alice, chat, "/start")
        assert "front-facing" in (await wait_text(h, chat, "2–4 second loops")).text

        tg.send_photo(alice, chat, PHOTO, caption="/animate subtle blink, slight head tilt")
        await consent(h, alice, chat)
        status = await wait_text(h, chat, "Queued")
        clips, keyboard = await delivered(h, chat)
        done = await wait_edit(h, chat, "Done")
        assert done.params["message_id"] == str(status.result["message_id"])
        # one status message, edited in place: never a second "Queued"/"Animating" message
        assert len([t for t in tg.texts_to(chat) if "Queued" in t]) >= 1
        sent = [c.text for c in tg.calls_of("sendMessage", chat)]
        assert len([t for t in sent if "Queued" in t or "Animating" in t]) == 1
        edits = [
            c
            for c in tg.calls_of("editMessageText", chat)
            if c.params["message_id"] == done.params["message_id"]
        ]
        assert all(
            ("Animating" in c.text) or ("Queued" in c.text) or ("Done" in c.text) for c in edits
        )

        assert [c.text.splitlines()[0].split(" ·")[0].split(" (")[0] for c in clips] == [
            "Take 1",
            "Take 2",
        ]
        assert all("likeness" in c.text and "loop" in c.text for c in clips)
        assert all(c.files["animation"][4:8] == b"ftyp" for c in clips)
        labels = list(keyboard.buttons())
        assert labels == [
            "Pick 1",
            "Pick 2",
            "🎲 Vary 1",
            "🎲 Vary 2",
            "🔁 Re-roll",
            "➖ Less motion",
            "➕ More motion",
        ]
        assert all(len(data.encode()) <= 64 for data in keyboard.buttons().values())

        tg.press(alice, keyboard.result, keyboard.buttons()["Pick 2"])
        finals = await tg.wait_for("sendAnimation", count=TAKES + 1, where=to_chat(chat))
        assert finals[-1].text.startswith("⭐ Final — take 2")
        assert finals[-1].files["animation"] == clips[1].files["animation"]
        keyboard_id = str(keyboard.result["message_id"])
        removed = await tg.wait_for(
            "editMessageReplyMarkup", where=lambda c: c.params["message_id"] == keyboard_id
        )
        assert not removed[-1].params.get("reply_markup")
    assert_every_callback_answered_once(tg)
    assert len(tg.calls_of("sendAnimation", chat)) == TAKES + 1  # the final clip was sent once
    commands = tg.calls_of("setMyCommands")[0].params["commands"]
    assert [c["command"] for c in commands] == [
        "animate",
        "settings",
        "consent",
        "forget",
        "help",
    ]
    updates = tg.calls_of("getUpdates")[0].params["allowed_updates"]
    assert {"message", "callback_query", "message_reaction"} <= set(updates)


async def test_consent_refused_then_given_and_revoked(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_photo(alice, chat, PHOTO, caption="/animate gentle breathing")
        question = await wait_text(h, chat, "please confirm")
        tg.press(alice, question.result, question.buttons()[texts.consent_no])
        await wait_edit(h, chat, "nothing was generated")
        assert not h.state_jobs()

        tg.send_photo(alice, chat, PHOTO, caption="/animate gentle breathing")
        await consent(h, alice, chat, count=2)
        await delivered(h, chat)
        assert len(h.state_jobs()) == 1

        tg.send_text(alice, chat, "/consent")
        shown = await wait_text(h, chat, "Consent on record")
        tg.press(alice, shown.result, shown.buttons()[texts.consent_revoke])
        await wait_edit(h, chat, "Consent revoked")

        tg.send_photo(alice, chat, PHOTO, caption="/animate gentle breathing")
        await wait_text(h, chat, "please confirm", count=3)
    assert_every_callback_answered_once(tg)


async def test_each_button_creates_a_child_job_linked_to_its_parent(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        photo = tg.send_photo(alice, chat, PHOTO)["message"]
        await wait_text(h, chat, "What motion")  # a photo alone: the bot asks for the motion
        tg.send_text(alice, chat, "/animate slow blink", reply_to=photo)
        await consent(h, alice, chat)
        _, keyboard = await delivered(h, chat)
        (parent,) = h.state_jobs()
        buttons = keyboard.buttons()
        for n, label in enumerate(
            ["🔁 Re-roll", "➖ Less motion", "➕ More motion", "🎲 Vary 2"], 2
        ):
            tg.press(alice, keyboard.result, buttons[label])
            await delivered(h, chat, rounds=n)
        children = [j for j in h.state_jobs() if j.parent_job_id == parent.job_id]
        assert sorted(j.adjust for j in children) == ["less", "more", "reroll", "vary"]
        for child in children:
            body = await h.service_job(child.job_id)
            assert body["state"] == "done"
            assert body["parent"]["job_id"] == parent.job_id
    assert_every_callback_answered_once(tg)


async def test_reaction_picks_in_private(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_photo(alice, chat, PHOTO, caption="/animate subtle smile")
        await consent(h, alice, chat)
        clips, keyboard = await delivered(h, chat)
        tg.react(alice, chat, clips[1].result["message_id"], ["🔥"])
        finals = await tg.wait_for("sendAnimation", count=TAKES + 1, where=to_chat(chat))
        assert finals[-1].text.startswith("⭐ Final — take 2")
        await tg.wait_for("editMessageReplyMarkup", where=to_chat(chat))
        # the keyboard's buttons are stale now
        tg.press(alice, keyboard.result, keyboard.buttons()["Pick 1"])
        await tg.wait_until(lambda: len(tg.answered) == 2)
    answers = tg.calls_of("answerCallbackQuery")
    assert answers[-1].params["text"] == texts.expired
    assert len(tg.calls_of("sendAnimation", chat)) == TAKES + 1


async def test_group_vote_and_requester_pick(h: Harness) -> None:
    h.vote_window_s = 2.0
    tg, alice, bob, carol, group = h.tg, h.tg.alice, h.tg.bob, h.tg.carol, h.tg.group
    async with h.bot():
        # round 1: members vote, the window closes, the most-voted take wins
        tg.send_photo(alice, group, PHOTO, caption="/animate@livingphoto_bot slight head tilt")
        await consent(h, alice, group)
        clips, keyboard = await delivered(h, group)
        assert "vote by reacting" in keyboard.text
        tg.press(bob, keyboard.result, keyboard.buttons()["Pick 1"])  # not his to press
        tg.react(bob, group, clips[1].result["message_id"], ["👍"])
        tg.react(carol, group, clips[0].result["message_id"], ["2️⃣"])
        await wait_text(h, group, "The vote is in: take 2 wins with 2 votes")
        finals = await tg.wait_for("sendAnimation", count=TAKES + 1, where=to_chat(group))
        assert finals[-1].text.startswith("⭐ Final — take 2")

        # round 2: the requester's own reaction ends the vote at once
        tg.send_photo(alice, group, PHOTO, caption="/animate slight head tilt")
        clips, _ = await delivered(h, group, rounds=2)
        tg.react(bob, group, clips[1].result["message_id"], ["❤"])
        tg.react(alice, group, clips[0].result["message_id"], ["1️⃣"])
        finals = await tg.wait_for("sendAnimation", count=2 * TAKES + 2, where=to_chat(group))
        assert finals[-1].text.startswith("⭐ Final — take 1")
    answers = [c.params.get("text") for c in tg.calls_of("answerCallbackQuery")]
    assert texts.not_yours in answers
    assert len([t for t in tg.texts_to(group) if "The vote is in" in t]) == 1


async def test_forged_callback_and_duplicate_updates(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_text(alice, chat, "/help")
        help_call = await wait_text(h, chat, "What works best")
        tg.press(alice, help_call.result, "forged-data")
        tg.press(alice, help_call.result, "x" * 64)
        await tg.wait_until(lambda: len(tg.answered) == 2)

        update = tg.send_photo(alice, chat, PHOTO, caption="/animate blink")
        await wait_text(h, chat, "please confirm")
        tg.redeliver(update)
        question = await wait_text(h, chat, "please confirm")
        press = tg.press(alice, question.result, question.buttons()[texts.consent_yes])
        tg.redeliver(press)
        await delivered(h, chat)
        tg.send_text(alice, chat, "/help")  # processed after the duplicates: a sync point
        await wait_text(h, chat, "What works best", count=2)
    answers = [c.params.get("text") for c in tg.calls_of("answerCallbackQuery")]
    assert answers[:2] == [texts.expired, texts.expired]
    assert len([t for t in tg.texts_to(chat) if "please confirm" in t]) == 1
    assert len(h.state_jobs()) == 1
    assert len(tg.calls_of("sendAnimation", chat)) == TAKES
    assert_every_callback_answered_once(tg)


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # in AIORateLimiter
async def test_429_is_waited_out_and_documents(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_document(alice, chat, b"%PDF-1.4 not a photo", "notes.pdf", "application/pdf")
        assert (await wait_text(h, chat, "not an image")).text == texts.not_image
        tg.send_photo(alice, chat, PHOTO, caption="/animate blink", file_size=25 * 1024 * 1024)
        assert "larger than 20 MB" in (await wait_text(h, chat, "larger than")).text

        tg.fail_next("sendAnimation", retry_after=1)
        tg.send_document(alice, chat, PHOTO, "me.jpg", "image/jpeg", caption="/animate blink")
        await consent(h, alice, chat)
        await delivered(h, chat)
    refused = [c for c in tg.calls if c.method == "sendAnimation" and c.status == 429]
    assert len(refused) == 1
    assert len(tg.calls_of("sendAnimation", chat)) == TAKES  # retried, each take once


async def test_refused_prompt_is_explained_politely(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_photo(alice, chat, PHOTO, caption="/animate make her undress")
        await consent(h, alice, chat)
        refusal = await wait_text(h, chat, "Sorry, I can't animate that")
    assert "sexual" in refusal.text
    assert "blink" in refusal.text  # what the user can ask for instead
    assert not tg.calls_of("sendAnimation")
    assert not h.state_jobs()


async def test_restart_mid_job_resumes_delivery_and_keeps_settings(tmp_path: Path) -> None:
    # the sleep backend holds the job for a while: the bot is down before any take exists
    async with harness(tmp_path, backend="sleep", sleep_seconds=1.0) as h:
        tg, alice = h.tg, h.tg.alice
        chat = tg.private_chat(alice)
        async with h.bot():
            tg.send_text(alice, chat, "/settings seconds 9")
            await wait_text(h, chat, "did not understand")
            tg.send_text(alice, chat, "/settings variations 3")
            await wait_text(h, chat, "3 takes")
            tg.send_text(alice, chat, "/settings motion strong")
            await wait_text(h, chat, "strong motion")
            tg.send_photo(alice, chat, PHOTO, caption="/animate blink")
            await consent(h, alice, chat)
            status = await wait_text(h, chat, "Queued")
        assert not tg.calls_of("sendAnimation")
        (pending,) = h.state_jobs()
        assert pending.phase == "running"

        async with h.bot():  # the restarted bot resumes the job and delivers every take once
            await tg.wait_for("sendAnimation", count=3, where=to_chat(chat))
            await wait_text(h, chat, "Pick your favourite")
            tg.send_text(alice, chat, "/settings")
            await wait_text(h, chat, "Your defaults: 3 takes", count=3)
        assert len(tg.calls_of("sendAnimation", chat)) == 3
        sent = [c.text for c in tg.calls_of("sendMessage", chat)]
        assert len([t for t in sent if "Queued" in t]) == 1  # the same status message, edited
        done = await wait_edit(h, chat, "Done")
        assert done.params["message_id"] == str(status.result["message_id"])
        (job,) = h.state_jobs()
        assert job.phase == "delivered"


async def test_forget_says_what_was_deleted(h: Harness) -> None:
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_photo(alice, chat, PHOTO, caption="/animate blink")
        await consent(h, alice, chat)
        await delivered(h, chat)
        tg.send_text(alice, chat, "/forget")
        forgot = await wait_text(h, chat, "Deleted")
    assert forgot.text.startswith("Done. Deleted 1 request, ")
    assert "1 consent record" in forgot.text
    assert "stored files" in forgot.text
    assert not h.state_jobs()


async def test_progress_is_one_edited_message_and_limits_say_when_to_retry(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, backend="sleep", sleep_seconds=0.5, max_inflight_per_user=1) as h:
        tg, alice = h.tg, h.tg.alice
        chat = tg.private_chat(alice)
        async with h.bot():
            tg.send_photo(alice, chat, PHOTO, caption="/animate blink")
            await consent(h, alice, chat)
            status = await wait_text(h, chat, "Queued")
            tg.send_photo(alice, chat, PHOTO, caption="/animate blink again")
            limited = await wait_text(h, chat, "Please try again in")
            await delivered(h, chat)
        status_id = str(status.result["message_id"])
        edits = [
            c.text
            for c in tg.calls_of("editMessageText", chat)
            if c.params["message_id"] == status_id
        ]
        assert any("Animating…" in t and "%" in t for t in edits)
        assert edits[-1].startswith("✅ Done")
        assert "seconds" in limited.text or "minutes" in limited.text
        assert len(h.state_jobs()) == 1


# -- languages -------------------------------------------------------------------------------
PORTRAIT = astronaut_bytes()  # a human face: the consent question is asked


async def test_spanish_and_german_users_are_answered_in_their_language(h: Harness) -> None:
    tg = h.tg
    ana, dieter = User(2001, "Ana", "es"), User(2002, "Dieter", "de-DE")
    async with h.bot():
        for user, language, motion in ((ana, "es", "parpadeo suave"), (dieter, "de", "blinzeln")):
            t, chat = for_language(language), tg.private_chat(user)
            tg.send_text(user, chat, "/help")
            shown = await wait_text(h, chat, t.help_text("telegram")[:40])
            assert shown.text == t.help_text("telegram")

            tg.send_photo(user, chat, PORTRAIT, caption=f"/animate {motion}")
            question = await wait_text(h, chat, t.consent_question[:40])
            assert question.text == t.consent_question
            assert list(question.buttons()) == [t.consent_yes, t.consent_no]
            tg.press(user, question.result, question.buttons()[t.consent_yes])
            await wait_edit(h, chat, t.consent_recorded)
            await wait_text(h, chat, t.queued(1)[:12])
            record = await h.service_consent(user)
            assert record["consented"] and record["record"]["language"] == language

        # Ana switches to German: the Spanish consent stays valid, the bot now speaks German
        chat = tg.private_chat(ana)
        tg.send_text(ana, chat, "/settings language de")
        await wait_text(h, chat, for_language("de").language_set("de"))
        tg.send_photo(ana, chat, PORTRAIT, caption="/animate blinzeln")
        await wait_edit(h, chat, for_language("de").done(TAKES))
        assert not [t for t in tg.texts_to(chat) if t == for_language("de").consent_question]
    # the command menu is registered in every language
    menus = {
        c.params.get("language_code", ""): c.params["commands"]
        for c in tg.calls_of("setMyCommands")
    }
    assert set(menus) == {"", "es", "de", "fr", "pt"}
    assert menus["es"][0] == {
        "command": "animate",
        "description": for_language("es").command_descriptions()["animate"],
    }


async def test_group_admin_sets_the_chat_language(h: Harness) -> None:
    tg, alice, bob, carol, group = h.tg, h.tg.alice, h.tg.bob, h.tg.carol, h.tg.group
    german = for_language("de")
    async with h.bot():
        tg.send_text(carol, group, "/settings chat language fr")  # carol is not an admin
        await wait_text(h, group, texts.admin_only)
        tg.send_text(alice, group, "/settings chat language de")
        await wait_text(h, group, german.chat_language_set("de"))
        tg.send_text(bob, group, "/help")  # bob's app says no language: the chat's default
        assert (await wait_text(h, group, german.help_text("telegram")[:40])).text == (
            german.help_text("telegram")
        )
        tg.send_text(User(2003, "Inês", "pt-br"), group, "/help")  # her own language first
        await wait_text(h, group, for_language("pt").help_text("telegram")[:40])
        tg.send_text(bob, group, "/settings language klingon")
        await wait_text(h, group, german.language_unknown("klingon", ["en"])[:12])


# -- looking at the photo first (a service that inspects) -----------------------------------
DOG = jpeg_bytes(200, 160)
PAIR_FACES = [(170, 50, 130, 160), (682, 50, 130, 160)]


def pair_photo() -> bytes:
    """Two portraits side by side (the public-domain astronaut twice)."""
    with Image.open(io.BytesIO(PORTRAIT)) as portrait:
        pair = Image.new("RGB", (portrait.width * 2, portrait.height))
        pair.paste(portrait.convert("RGB"), (0, 0))
        pair.paste(portrait.convert("RGB"), (portrait.width, 0))
    out = io.BytesIO()
    pair.save(out, format="JPEG", quality=90)
    return out.getvalue()


@asynccontextmanager
async def inspecting(tmp_path: Path) -> AsyncIterator[tuple[Harness, InspectingService]]:
    async with TelegramEmulator() as tg, InspectingService() as svc:
        yield Harness(tg, svc, tmp_path), svc


async def test_a_dog_gets_no_consent_question_a_person_does(tmp_path: Path) -> None:
    async with inspecting(tmp_path) as (h, svc):
        tg, alice = h.tg, h.tg.alice
        chat = tg.private_chat(alice)
        svc.show(DOG, "animal")
        svc.show(PORTRAIT, "face", [(170, 50, 130, 160)])
        async with h.bot():
            tg.send_photo(alice, chat, DOG, caption="/animate gentle breathing")
            await wait_text(h, chat, "Queued")
            assert len(svc.jobs) == 1 and "face" not in svc.jobs[0]
            assert not [t for t in tg.texts_to(chat) if "please confirm" in t]

            tg.send_photo(alice, chat, PORTRAIT, caption="/animate subtle blink")
            question = await wait_text(h, chat, "please confirm")
            assert len(svc.jobs) == 1  # nothing submitted before consent
            tg.press(alice, question.result, question.buttons()[texts.consent_yes])
            await wait_text(h, chat, "Queued", count=2)
        assert len(svc.jobs) == 2 and svc.refused == []
        assert len(svc.inspections) == 2  # each photo looked at once


async def test_group_photo_offers_one_button_per_face_and_sends_the_choice(
    tmp_path: Path,
) -> None:
    async with inspecting(tmp_path) as (h, svc):
        tg, alice, bob = h.tg, h.tg.alice, h.tg.bob
        chat = tg.private_chat(alice)
        pair = pair_photo()
        svc.show(pair, "face", PAIR_FACES)
        spanish = for_language("es")
        ana = User(alice.id, "Alice", "es")
        async with h.bot():
            tg.send_photo(ana, chat, pair, caption="/animate parpadeo suave")
            (choice,) = await tg.wait_for("sendPhoto", where=to_chat(chat))
            assert choice.text == spanish.face_question(2)
            assert list(choice.buttons()) == ["1 · Izquierda", "2 · Derecha"]
            with Image.open(io.BytesIO(choice.files["photo"])) as strip:  # the face crops
                assert strip.format == "PNG" and strip.width > 1.5 * strip.height
            assert svc.jobs == [] and not h.state_jobs()
            tg.press(bob, choice.result, choice.buttons()["2 · Derecha"])  # not his photo
            tg.press(ana, choice.result, choice.buttons()["2 · Derecha"])
            question = await wait_text(h, chat, spanish.consent_question[:40])
            assert svc.consents == {}
            tg.press(ana, question.result, question.buttons()[spanish.consent_yes])
            await wait_text(h, chat, spanish.queued(1)[:12])
            removed = await tg.wait_for("editMessageReplyMarkup", where=to_chat(chat))
            assert removed[0].params["message_id"] == str(choice.result["message_id"])
        assert [job.get("face") for job in svc.jobs] == [1]
        assert svc.consents[("telegram", str(alice.id))]["language"] == "es"
        answers = [c.params.get("text") for c in tg.calls_of("answerCallbackQuery")]
        assert texts.not_yours in answers  # bob's app reports no language
        assert spanish.face_chosen(spanish.face_label(1, 2)) in answers


async def test_the_real_service_looks_first(h: Harness) -> None:
    """Against the real service's face model: no face, no consent question; two people, one
    button per face, and the chosen face reaches the job."""
    tg, alice = h.tg, h.tg.alice
    chat = tg.private_chat(alice)
    async with h.bot():
        tg.send_photo(alice, chat, jpeg_bytes(160, 200), caption="/animate gentle breathing")
        await delivered(h, chat)
        assert not [t for t in tg.texts_to(chat) if "please confirm" in t]

        tg.send_photo(alice, chat, pair_photo(), caption="/animate subtle blink")
        (choice,) = await tg.wait_for("sendPhoto", where=to_chat(chat))
        assert list(choice.buttons()) == ["1 · Left", "2 · Right"]
        tg.press(alice, choice.result, choice.buttons()["2 · Right"])
        await consent(h, alice, chat)
        await delivered(h, chat, rounds=2)
    jobs = sorted(h.state_jobs(), key=lambda job: job.created_at)
    with sqlite3.connect(h.svc.data_dir / "jobs.sqlite3") as db:
        options = dict(db.execute("SELECT id, options FROM jobs").fetchall())
    assert [json.loads(options[job.job_id]).get("face") for job in jobs] == [None, 1]
