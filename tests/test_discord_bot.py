"""The Discord bot end to end: the real discord.py client against the local Discord emulator
(tests/emulators/discord_api.py) and a real generation service on loopback (warp backend).

Each scenario drives users' actions through the emulated gateway and asserts what the bot sent
to the emulated REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from emulators.discord_api import EPHEMERAL, Attachment, Call, DiscordEmulator, EmuUser
from emulators.inspecting_service import InspectingService
from images import astronaut_bytes, jpeg_bytes
from PIL import Image
from servicekit import running_service

from bot.discord.app import DiscordOptions, DiscordUnavailable, main, run_bot
from bot.discord.media import ClipTooLarge, fit_clips
from bot.texts import ENGLISH as texts_en
from bot.texts import for_language
from generation.export import SYNTHETIC_STATEMENT, export_clip, probe
from livingphoto.errors import UsageError
from livingphoto.settings import Settings

pytestmark = pytest.mark.timeout(120)

KEYCAPS = [f"{n}\ufe0f\u20e3" for n in range(1, 10)]


def _small_portrait(side: int = 200) -> bytes:
    """The public-domain astronaut at ``side`` px: a human face, small enough for fast takes."""
    with Image.open(io.BytesIO(astronaut_bytes())) as portrait:
        small = portrait.convert("RGB").resize((side, side))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return out.getvalue()


PORTRAIT = _small_portrait()
POST_MESSAGE = "POST /channels/{channel_id}/messages"
PATCH_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"
EDIT_ORIGINAL = "PATCH /webhooks/{application_id}/{token}/messages/@original"
FOLLOWUP = "POST /webhooks/{application_id}/{token}"
EDIT_FOLLOWUP = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
CALLBACK = "POST /interactions/{interaction_id}/{token}/callback"
REACT = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"


def _settings(
    emu: DiscordEmulator, service_url: str, token: str, data_dir: Path, vote_window_s: float
) -> Settings:
    env = {
        "DISCORD_BOT_TOKEN": "test-bot-token",
        "DISCORD_API_BASE_URL": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "LIVINGPHOTO_SERVICE_URL": service_url,
        "LIVINGPHOTO_SERVICE_TOKEN": token,
        "LIVINGPHOTO_DATA_DIR": str(data_dir),
        "LIVINGPHOTO_VOTE_WINDOW_S": str(vote_window_s),
    }
    return Settings.from_env(env, dotenv_path=data_dir / "no.env")


class Harness:
    """The emulator, a service and the bot; ``start``/``stop`` the bot (for restarts)."""

    def __init__(self, emu: DiscordEmulator, settings: Settings) -> None:
        self.emu = emu
        self.settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._starts = 0

    async def start(self) -> None:
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            run_bot(self.settings, self._stop, DiscordOptions(guild_ready_timeout=0.05))
        )
        self._starts += 1
        waiting = asyncio.create_task(self.emu.wait_identified(self._starts))
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiting.cancel()
            self._task.result()
        await waiting

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 20)
            self._task = None

    async def service(self, method: str, path: str, body: Any = None) -> Any:
        """Call the generation service directly (to set up consent, fetch originals)."""
        bot = self.settings.bot
        headers = {"Authorization": f"Bearer {bot.service_token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, bot.service_url + path, json=body, headers=headers) as response,
        ):
            response.raise_for_status()
            if response.content_type == "application/json":
                return await response.json()
            return await response.read()

    async def give_consent(self, user: EmuUser) -> None:
        await self.service(
            "PUT",
            f"/v1/users/discord/{user.id}/consent",
            {"chat_id": "0"},  # the service's current consent wording
        )

    # -- waiting on what the bot sent ------------------------------------------------------
    async def call(
        self, predicate: Callable[[Call], bool], start: int = 0, wait_s: float = 15.0
    ) -> Call:
        return await self.emu.wait_for_call(predicate, wait_s=wait_s, start=start)

    async def clips_message(self, channel_id: int, start: int = 0, count: int = 1) -> Call:
        """The bot's channel message carrying ``count`` MP4 clips (rendering a portrait, with
        its face model, takes a while on a busy machine)."""
        return await self.call(
            lambda c: (
                c.route == POST_MESSAGE
                and c.status == 200
                and int(c.params["channel_id"]) == channel_id
                and sum(f.filename.endswith(".mp4") for f in c.files) == count
            ),
            start,
            wait_s=60.0,
        )

    async def buttons_on(self, message_id: int, start: int = 0) -> list[dict[str, Any]]:
        """Wait until the bot attached buttons to ``message_id``; return them."""
        await self.call(
            lambda c: (
                c.route == PATCH_MESSAGE
                and int(c.params["message_id"]) == message_id
                and bool((c.json or {}).get("components"))
            ),
            start,
        )
        return self.emu.components_of(message_id)


def _message_id(call: Call) -> int:
    """The id of the message that ``call`` created (from the emulator's answer)."""
    return int(call.response["id"])


def _route_for(route: str, token: str) -> Callable[[Call], bool]:
    """Matches calls to ``route`` made for the interaction with ``token``."""
    return lambda c: c.route == route and token in c.path


def _button(components: list[dict[str, Any]], label_start: str) -> dict[str, Any]:
    return next(b for b in components if str(b.get("label", "")).startswith(label_start))


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, vote_window_s: float = 30.0, **service_overrides: Any
) -> AsyncIterator[Harness]:
    async with (
        DiscordEmulator(heartbeat_interval_ms=500) as emu,
        running_service(tmp_path / "svc", backend="warp", **service_overrides) as svc,
    ):
        h = Harness(emu, _settings(emu, svc.url, svc.token, tmp_path / "bot", vote_window_s))
        await h.start()
        try:
            yield h
        except BaseException:
            _print_calls(emu)  # shown by pytest with the failure
            raise
        finally:
            await h.stop()
        assert emu.unknown == [], f"the bot called routes the emulator lacks: {emu.unknown}"


def _print_calls(emu: DiscordEmulator) -> None:
    for c in emu.calls:
        body = json.dumps(c.json, ensure_ascii=False)[:160]
        print(c.route, c.status, body, [f.filename for f in c.files])


def _photo(emu: DiscordEmulator) -> Attachment:
    return emu.upload("face.jpg", PORTRAIT, "image/jpeg")  # a face: consent is asked


async def test_slash_command_with_consent_to_final_clip(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        # Start-up: commands synced, no privileged intent asked for.
        assert {"animate", "consent", "forget"} <= set(emu.commands)
        options = {o["name"]: o["type"] for o in emu.commands["animate"]["options"]}
        assert options == {"photo": 11, "motion": 3, "variations": 4, "seconds": 10}
        assert emu.identifies[0]["intents"] & (1 << 15) == 0  # no message-content intent

        token = await emu.slash_command(
            emu.alice,
            emu.channel_id,
            "animate",
            {"photo": _photo(emu), "motion": "subtle blink", "variations": 2, "seconds": 2.0},
        )
        # Deferred at once, ephemeral; then the consent question replaces the "thinking" message.
        defer = await h.call(lambda c: c.route == CALLBACK and token in c.path)
        assert defer.json == {"type": 5, "data": {"flags": EPHEMERAL}}
        question = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "confirm" in question.json["content"].lower()
        original = emu.interaction_original(token)
        assert int(original["flags"]) & EPHEMERAL
        confirm = _button(emu.components_of(int(original["id"])), "✅")

        mark = len(emu.calls)
        press = await emu.press_button(emu.alice, int(original["id"]), confirm["custom_id"])
        ack = await h.call(lambda c: c.route == CALLBACK and press in c.path, mark)
        assert ack.json == {"type": 6}
        # The consent message loses its buttons; progress goes to an ephemeral follow-up.
        await h.call(
            lambda c: (
                c.route == EDIT_ORIGINAL and token in c.path and c.json.get("components") == []
            ),
            mark,
        )
        status = await h.call(lambda c: c.route == FOLLOWUP and token in c.path, mark)
        assert status.json["flags"] & EPHEMERAL
        clips = await h.clips_message(emu.channel_id, mark, count=2)
        names = [f.filename for f in clips.files]
        assert names[:2] == ["take-1.mp4", "take-2.mp4"] and names[2].endswith(".webp")
        with Image.open(io.BytesIO(clips.files[2].data)) as preview:  # autoplays in Discord
            assert preview.format == "WEBP" and getattr(preview, "n_frames", 1) > 1
            assert preview.width > preview.height  # the two takes side by side
        clips_id = _message_id(clips)
        # "seconds: 2.0" of this request, not the 3 s default (kept through the consent question).
        take = tmp_path / "take-1.mp4"
        take.write_bytes(clips.files[0].data)
        assert 1.5 <= probe(take).duration_s <= 2.5
        # The bot reacted 1️⃣ 2️⃣ and put the buttons on the same message.
        await h.call(lambda c: c.route == REACT and c.params["emoji"] == KEYCAPS[1], mark)
        buttons = await h.buttons_on(clips_id, mark)
        labels = [b["label"] for b in buttons]
        assert any(label.startswith("Pick 1") for label in labels), labels
        assert {"🔁 Re-roll", "➖ Less motion", "➕ More motion"} <= set(labels)
        assert all(len(b["custom_id"]) <= 100 for b in buttons)
        assert "Pick your favourite of the 2 takes" in emu.messages[clips_id]["content"]
        # ... and sent no separate keyboard message.
        assert not [
            c for c in emu.calls[mark:] if c.route == POST_MESSAGE and c.json.get("components")
        ]
        # Progress was shown by editing that follow-up (queue position, then progress / done).
        await h.call(lambda c: c.route == EDIT_FOLLOWUP and token in c.path, mark)

        mark = len(emu.calls)
        await emu.press_button(emu.alice, clips_id, _button(buttons, "Pick 2")["custom_id"])
        final = await h.clips_message(emu.channel_id, mark, count=1)
        assert final.files[0].filename == "final-2.mp4"
        await h.call(
            lambda c: c.route == PATCH_MESSAGE and int(c.params["message_id"]) == clips_id,
            mark,
        )
        assert all(b.get("disabled") for b in emu.components_of(clips_id))

        # The request's variations/seconds did not become Alice's defaults.
        token = await emu.slash_command(emu.alice, emu.channel_id, "settings", {})
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert answer.json["content"].startswith(
            "Your defaults: 3 takes, 3 s, normal motion, language: English."
        )
        assert "/settings change:variations 1-6" in answer.json["content"]


async def _deliver_by_slash(
    h: Harness, user: EmuUser, channel_id: int, variations: int, motion: str = "subtle blink"
) -> tuple[str, int, list[dict[str, Any]]]:
    """Consent given up front; /animate; returns (token, clips message id, its buttons)."""
    emu = h.emu
    mark = len(emu.calls)
    token = await emu.slash_command(
        user,
        channel_id,
        "animate",
        {"photo": _photo(emu), "motion": motion, "variations": variations, "seconds": 2.0},
    )
    clips = await h.clips_message(channel_id, mark, count=variations)
    clips_id = _message_id(clips)
    buttons = await h.buttons_on(clips_id, mark)
    return token, clips_id, buttons


async def test_photo_message_in_a_dm_then_reaction_pick(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        dm = emu.dm_channel(emu.alice)
        # A photo with no text: the bot asks for the motion, replying to the photo.
        photo_message = await emu.send_message(emu.alice, dm, "", [_photo(emu)])
        ask = await h.call(lambda c: c.route == POST_MESSAGE and "motion" in c.json["content"])
        assert str(ask.json["message_reference"]["message_id"]) == photo_message["id"]
        # The motion as plain text starts the job; the status message is edited in place.
        mark = len(emu.calls)
        text = await emu.send_message(emu.alice, dm, "gentle breathing")
        status = await h.call(lambda c: c.route == POST_MESSAGE and not c.files, mark)
        assert str(status.json["message_reference"]["message_id"]) == text["id"]
        clips = await h.clips_message(dm, mark, count=3)
        clips_id = _message_id(clips)
        await h.call(
            lambda c: (
                c.route == PATCH_MESSAGE and c.params["message_id"] == str(status.response["id"])
            ),
            mark,
        )
        await h.buttons_on(clips_id, mark)
        # The bot's own reactions came back over the gateway and picked nothing.
        assert not [
            c
            for c in emu.calls[mark:]
            if c.route == POST_MESSAGE and any(f.filename.startswith("final") for f in c.files)
        ]
        mark = len(emu.calls)
        await emu.add_reaction(emu.alice, clips_id, KEYCAPS[2])
        final = await h.clips_message(dm, mark, count=1)
        assert final.files[0].filename == "final-3.mp4"


async def test_every_button_and_someone_elses_press(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        _, clips_id, buttons = await _deliver_by_slash(h, emu.alice, emu.channel_id, 1)
        # Bob may not press Alice's buttons: an ephemeral explanation, nothing else.
        mark = len(emu.calls)
        press = await emu.press_button(emu.bob, clips_id, _button(buttons, "🔁")["custom_id"])
        notice = await h.call(lambda c: c.route == FOLLOWUP and press in c.path, mark)
        assert notice.json["flags"] & EPHEMERAL
        assert "only the person who asked" in notice.json["content"].lower()
        # Each adjustment starts a child job delivered as its own clips message.
        for label in ("🔁", "➖", "➕", "🎲"):
            mark = len(emu.calls)
            press = await emu.press_button(
                emu.alice, clips_id, _button(buttons, label)["custom_id"]
            )
            ack = await h.call(_route_for(CALLBACK, press), mark)
            assert ack.json == {"type": 6}
            answer = await h.call(_route_for(FOLLOWUP, press), mark)
            assert answer.json["flags"] & EPHEMERAL
            await h.clips_message(emu.channel_id, mark, count=1)
        assert not [c for c in emu.calls if c.status >= 400]


async def test_guild_vote_ignores_the_bots_reactions(tmp_path: Path) -> None:
    async with harness(tmp_path, vote_window_s=2.0) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        # A photo with the motion, mentioning the bot in the guild channel.
        mark = len(emu.calls)
        mention = await emu.send_message(
            emu.alice,
            emu.channel_id,
            f"<@{emu.bot.id}> subtle blink",
            [_photo(emu)],
            mentions=[emu.bot],
        )
        status = await h.call(lambda c: c.route == POST_MESSAGE and not c.files, mark)
        assert str(status.json["message_reference"]["message_id"]) == mention["id"]
        clips = await h.clips_message(emu.channel_id, mark, count=3)
        clips_id = _message_id(clips)
        await h.buttons_on(clips_id, mark)
        mark = len(emu.calls)
        # The bot's own 1️⃣ would tie with Bob's 2️⃣ and win the tie if it counted.
        await emu.add_reaction(emu.bob, clips_id, KEYCAPS[1])
        final = await h.clips_message(emu.channel_id, mark, count=1)
        assert final.files[0].filename == "final-2.mp4"
        note = [c for c in emu.calls[mark:] if c.route == POST_MESSAGE and not c.files]
        assert note and "take 2" in note[0].json["content"]
        await h.call(
            lambda c: c.route == PATCH_MESSAGE and int(c.params["message_id"]) == clips_id,
            mark,
        )
        assert all(b.get("disabled") for b in emu.components_of(clips_id))
        assert emu.heartbeats > 0  # the bot kept the gateway alive (ACKed) all along


async def test_upload_limit_forces_a_smaller_encode(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        # The interaction tells the limit of the guild channel; the DM's is learnt from a 413.
        limit = 24_000
        emu.set_upload_limit(emu.channel_id, limit)
        mark = len(emu.calls)
        await emu.slash_command(
            emu.alice,
            emu.channel_id,
            "animate",
            {"photo": _photo(emu), "motion": "subtle blink", "variations": 2, "seconds": 2.0},
        )
        clips = await h.clips_message(emu.channel_id, mark, count=2)
        assert sum(len(f.data) for f in clips.files) <= limit
        # Still labelled as synthetic after the re-encode.
        smaller = tmp_path / "sent.mp4"
        smaller.write_bytes(clips.files[0].data)
        assert probe(smaller).metadata["comment"] == SYNTHETIC_STATEMENT
        originals = [await h.service("GET", path) for path in await _variation_paths(h)]
        assert sum(len(o) for o in originals) > limit  # the clips as made would not have fitted

        dm = emu.dm_channel(emu.alice)
        emu.set_upload_limit(dm, limit)
        # Alice's defaults (set in the guild: an interaction in the DM would tell its limit).
        for change in ("variations 2", "seconds 2"):
            token = await emu.slash_command(
                emu.alice, emu.channel_id, "settings", {"change": change}
            )
            await h.call(_route_for(EDIT_ORIGINAL, token))
        assert emu.interaction_original(token)["content"].startswith("Your defaults: 2 takes, 2 s")
        mark = len(emu.calls)
        await emu.send_message(emu.alice, dm, "gentle breathing", [_photo(emu)])
        refused = await h.call(lambda c: c.route == POST_MESSAGE and c.status == 413, mark)
        assert sum(len(f.data) for f in refused.files) > limit
        clips = await h.clips_message(dm, mark, count=2)  # the 2 takes of /settings
        assert sum(len(f.data) for f in clips.files) <= limit


async def test_a_channel_too_small_for_any_clip_is_told_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        emu.set_upload_limit(emu.channel_id, 600)  # no MP4 fits: the flow must not retry
        mark = len(emu.calls)
        token = await emu.slash_command(
            emu.alice,
            emu.channel_id,
            "animate",
            {"photo": _photo(emu), "motion": "subtle blink", "variations": 1, "seconds": 2.0},
        )
        answer = await h.call(
            lambda c: (
                c.route == EDIT_ORIGINAL
                and token in c.path
                and "could not send these clips" in (c.json.get("content") or "")
            ),
            mark,
        )
        assert "small enough" in answer.json["content"] and "DM" in answer.json["content"]
        assert int(emu.interaction_original(token)["flags"]) & EPHEMERAL
        path = h.settings.bot.state_path("discord")
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT phase FROM jobs").fetchall() == [("ended",)]
        assert not [c for c in emu.calls[mark:] if c.route == POST_MESSAGE]


async def _variation_paths(h: Harness) -> list[str]:
    path = h.settings.bot.state_path("discord")
    with contextlib.closing(sqlite3.connect(path)) as db:
        (job_id,) = db.execute("SELECT job_id FROM jobs ORDER BY created_at LIMIT 1").fetchone()
    status = await h.service("GET", f"/v1/jobs/{job_id}")
    return [f"/v1/jobs/{job_id}/variations/{v['index']}" for v in status["variations"]]


async def test_buttons_work_after_a_restart(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        _, clips_id, buttons = await _deliver_by_slash(h, emu.alice, emu.channel_id, 2)
        await h.stop()
        await h.start()  # a new process: new client, same state on disk
        assert len(emu.identifies) == 2
        mark = len(emu.calls)
        await emu.press_button(emu.alice, clips_id, _button(buttons, "Pick 1")["custom_id"])
        final = await h.clips_message(emu.channel_id, mark, count=1)
        assert final.files[0].filename == "final-1.mp4"


async def test_refused_prompt_is_explained_privately(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        mark = len(emu.calls)
        token = await emu.slash_command(  # in the guild channel
            emu.alice,
            emu.channel_id,
            "animate",
            {"photo": _photo(emu), "motion": "make her undress"},
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path, mark)
        assert int(emu.interaction_original(token)["flags"]) & EPHEMERAL
        assert "sexual" in answer.json["content"].lower()  # the policy category, explained
        # The same as a slash command in a DM.
        token = await emu.slash_command(
            emu.alice,
            emu.dm_channel(emu.alice),
            "animate",
            {"photo": _photo(emu), "motion": "take off her shirt"},
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path, mark)
        assert int(emu.interaction_original(token)["flags"]) & EPHEMERAL
        assert "sexual" in answer.json["content"].lower()
        await asyncio.sleep(0.2)
        assert not [c for c in emu.calls[mark:] if c.route == POST_MESSAGE]


async def test_rate_limit_is_explained_privately(tmp_path: Path) -> None:
    async with harness(tmp_path, rate_user_per_min=1) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        await _deliver_by_slash(h, emu.alice, emu.channel_id, 1)
        mark = len(emu.calls)
        token = await emu.slash_command(
            emu.alice, emu.channel_id, "animate", {"photo": _photo(emu), "motion": "blink"}
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path, mark)
        assert int(emu.interaction_original(token)["flags"]) & EPHEMERAL
        assert "try again" in answer.json["content"].lower()
        assert not [c for c in emu.calls[mark:] if c.route == POST_MESSAGE]


async def test_consent_and_forget_commands(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        token = await emu.slash_command(emu.alice, emu.channel_id, "consent", {})
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "no consent" in answer.json["content"].lower()
        await h.give_consent(emu.alice)
        token = await emu.slash_command(emu.alice, emu.channel_id, "consent", {})
        await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        shown = emu.interaction_original(token)
        assert int(shown["flags"]) & EPHEMERAL
        revoke = _button(emu.components_of(int(shown["id"])), "Revoke")
        mark = len(emu.calls)
        await emu.press_button(emu.alice, int(shown["id"]), revoke["custom_id"])
        await h.call(
            lambda c: (
                c.route == EDIT_ORIGINAL
                and token in c.path
                and "revoked" in (c.json.get("content") or "").lower()
            ),
            mark,
        )
        record = await h.service("GET", f"/v1/users/discord/{emu.alice.id}/consent")
        assert record["consented"] is False

        token = await emu.slash_command(emu.alice, emu.channel_id, "forget", {})
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert int(emu.interaction_original(token)["flags"]) & EPHEMERAL
        assert answer.json["content"].startswith("Done.")


async def test_bad_inputs_get_clear_answers(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        # Not an image.
        notes = emu.upload("notes.pdf", b"%PDF-1.4 not a photo", "application/pdf")
        token = await emu.slash_command(
            emu.alice, emu.channel_id, "animate", {"photo": notes, "motion": "blink"}
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "not an image" in answer.json["content"].lower()
        # Larger than the bot downloads.
        huge = emu.upload("huge.jpg", b"\xff\xd8", "image/jpeg", declared_size=30 * 1024 * 1024)
        token = await emu.slash_command(
            emu.alice, emu.channel_id, "animate", {"photo": huge, "motion": "blink"}
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "larger than 25 mb" in answer.json["content"].lower()
        # Gone from Discord's CDN before the bot fetched it.
        await h.give_consent(emu.alice)
        gone = _photo(emu)
        del emu.attachments[gone.id]
        token = await emu.slash_command(
            emu.alice, emu.channel_id, "animate", {"photo": gone, "motion": "blink"}
        )
        answer = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "send it again" in answer.json["content"].lower()
        # A button whose request no longer exists (the user ran /forget meanwhile).
        _, clips_id, buttons = await _deliver_by_slash(h, emu.alice, emu.channel_id, 1)
        token = await emu.slash_command(emu.alice, emu.channel_id, "forget", {})
        forgot = await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)
        assert "deleted" in forgot.json["content"].lower()
        mark = len(emu.calls)
        press = await emu.press_button(emu.alice, clips_id, _button(buttons, "Pick 1")["custom_id"])
        answer = await h.call(lambda c: c.route == FOLLOWUP and press in c.path, mark)
        assert "expired" in answer.json["content"].lower()
        assert answer.json["flags"] & EPHEMERAL
        # A mention with no photo: how to send one, not an error.
        mark = len(emu.calls)
        await emu.send_message(
            emu.bob, emu.channel_id, f"<@{emu.bot.id}> hello", mentions=[emu.bot]
        )
        help_ = await h.call(lambda c: c.route == POST_MESSAGE, mark)
        assert "photo" in help_.json["content"].lower()
        # A plain guild message without a mention is ignored.
        mark = len(emu.calls)
        await emu.send_message(emu.carol, emu.channel_id, "nice weather", [_photo(emu)])
        await asyncio.sleep(0.2)
        assert not emu.calls[mark:]


def test_main_without_a_token_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.from_env(
        {"LIVINGPHOTO_DATA_DIR": str(tmp_path)}, dotenv_path=tmp_path / "x"
    )
    assert main(settings) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: DISCORD_BOT_TOKEN is not set"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DISCORD_GATEWAY_URL", "http://example.invalid", "must be a ws:// or wss:// URL"),
        ("DISCORD_API_BASE_URL", "ftp://example.invalid/", "must be an http(s) URL"),
    ],
)
def test_main_with_a_bad_url_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str, message: str
) -> None:
    env = {"LIVINGPHOTO_DATA_DIR": str(tmp_path), "DISCORD_BOT_TOKEN": "x", name: value}
    assert main(Settings.from_env(env, dotenv_path=tmp_path / "x")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {name} {message}, got {value.rstrip('/')!r}"


async def test_main_with_a_rejected_token_exits_2(tmp_path: Path) -> None:
    async with DiscordEmulator() as emu:
        emu.reject_token = True
        env = {
            "LIVINGPHOTO_DATA_DIR": str(tmp_path),
            "DISCORD_BOT_TOKEN": "wrong",
            "DISCORD_API_BASE_URL": emu.api_base,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
        }
        settings = Settings.from_env(env, dotenv_path=tmp_path / "x")
        with pytest.raises(UsageError, match=r"^Discord rejected DISCORD_BOT_TOKEN$"):
            await run_bot(settings, asyncio.Event())


async def test_gateway_refusing_the_bot_ends_run_bot_with_one_line(tmp_path: Path) -> None:
    async with DiscordEmulator() as emu:
        emu.close_on_identify = 4004
        env = {
            "LIVINGPHOTO_DATA_DIR": str(tmp_path),
            "DISCORD_BOT_TOKEN": "revoked",
            "DISCORD_API_BASE_URL": emu.api_base,
            "DISCORD_GATEWAY_URL": emu.gateway_url,
        }
        settings = Settings.from_env(env, dotenv_path=tmp_path / "x")
        with pytest.raises(DiscordUnavailable, match=r"^lost the Discord gateway: .*4004"):
            await asyncio.wait_for(
                run_bot(settings, asyncio.Event(), DiscordOptions(guild_ready_timeout=0.05)), 20
            )


async def test_a_limit_no_clip_can_meet_is_a_clear_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(24, 96, 96, 3), dtype=np.uint8)
    clip = export_clip(frames, tmp_path / "noise.mp4", 12).read_bytes()
    assert await fit_clips([clip], len(clip) * 2) == [clip]  # fits: untouched
    with pytest.raises(
        ClipTooLarge,
        match=r"^a clip cannot be made small enough for this channel \(under \d+ bytes\)$",
    ):
        await fit_clips([clip], 3_000)


# -- languages -------------------------------------------------------------------------------
def _portrait(emu: DiscordEmulator) -> Attachment:
    return emu.upload("portrait.jpg", PORTRAIT, "image/jpeg")


async def _first_answer(h: Harness, token: str) -> Call:
    return await h.call(lambda c: c.route == EDIT_ORIGINAL and token in c.path)


async def test_interaction_locale_picks_the_language(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        # command descriptions are synced in every language (discord.py's Translator)
        animate = emu.commands["animate"]
        for locale, language in (("es-ES", "es"), ("de", "de"), ("fr", "fr"), ("pt-BR", "pt")):
            described = for_language(language).command_descriptions()["animate"]
            assert animate["description_localizations"][locale] == described
        assert animate["description"] == "Animate a photo into a short looping clip"

        for person, locale, language in ((emu.alice, "es-ES", "es"), (emu.bob, "de", "de")):
            t = for_language(language)
            user = replace(person, locale=locale)
            token = await emu.slash_command(user, emu.channel_id, "help", {})
            assert (await _first_answer(h, token)).json["content"] == t.help_text("discord")

            token = await emu.slash_command(
                user, emu.channel_id, "animate", {"photo": _portrait(emu), "motion": "blink"}
            )
            question = await _first_answer(h, token)
            assert question.json["content"] == t.consent_question
            original = int(emu.interaction_original(token)["id"])
            labels = [b["label"] for b in emu.components_of(original)]
            assert labels == [t.consent_yes, t.consent_no]
            if language == "es":  # consent in Spanish: the ledger records the language
                mark = len(emu.calls)
                yes = _button(emu.components_of(original), t.consent_yes)
                await emu.press_button(user, original, yes["custom_id"])
                await h.call(_route_for(FOLLOWUP, token), mark)
                record = await h.service("GET", f"/v1/users/discord/{user.id}/consent")
                assert record["consented"] and record["record"]["language"] == "es"


async def test_guild_locale_is_the_fallback_and_admins_set_a_default(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        emu = h.emu
        emu.guild_locale = "fr"
        german = for_language("de")
        stranger = replace(emu.bob, locale="ja")  # a language the bot does not speak
        token = await emu.slash_command(stranger, emu.channel_id, "help", {})
        content = (await _first_answer(h, token)).json["content"]
        assert content == for_language("fr").help_text("discord")

        token = await emu.slash_command(
            emu.bob, emu.channel_id, "settings", {"change": "chat language de"}
        )
        assert (await _first_answer(h, token)).json["content"] == texts_en.admin_only
        token = await emu.slash_command(
            emu.alice, emu.channel_id, "settings", {"change": "chat language de"}
        )
        assert (await _first_answer(h, token)).json["content"] == german.chat_language_set("de")
        token = await emu.slash_command(stranger, emu.channel_id, "help", {})
        assert (await _first_answer(h, token)).json["content"] == german.help_text("discord")


# -- looking at the photo first (a service that inspects) -----------------------------------
async def test_group_photo_face_choice_with_a_strip(tmp_path: Path) -> None:
    async with DiscordEmulator(heartbeat_interval_ms=500) as emu, InspectingService() as svc:
        h = Harness(emu, _settings(emu, svc.url, svc.token, tmp_path / "bot", 30.0))
        pair = _pair_photo()
        svc.show(pair, "face", [(170, 50, 130, 160), (682, 50, 130, 160)])
        dog = jpeg_bytes(200, 160)
        svc.show(dog, "animal")
        german = for_language("de")
        dieter = replace(emu.alice, locale="de")
        await h.start()
        try:
            photo = emu.upload("dog.jpg", dog, "image/jpeg")
            token = await emu.slash_command(
                dieter, emu.channel_id, "animate", {"photo": photo, "motion": "atmen"}
            )
            status = await _first_answer(h, token)
            assert status.json["content"] == german.queued(1)  # no consent question for a dog
            assert len(svc.jobs) == 1

            photo = emu.upload("pair.jpg", pair, "image/jpeg")
            token = await emu.slash_command(
                dieter, emu.channel_id, "animate", {"photo": photo, "motion": "blinzeln"}
            )
            choice = await _first_answer(h, token)
            assert choice.json["content"] == german.face_question(2)
            assert [f.filename for f in choice.files] == ["faces.png"]
            original = int(emu.interaction_original(token)["id"])
            labels = [b["label"] for b in emu.components_of(original)]
            assert labels == ["1 · Links", "2 · Rechts"]
            mark = len(emu.calls)
            await emu.press_button(
                dieter, original, _button(emu.components_of(original), "1 ·")["custom_id"]
            )
            question = await h.call(lambda c: c.route == FOLLOWUP and token in c.path, mark)
            assert question.json["content"] == german.consent_question
            consent_id = _message_id(question)
            yes = _button(emu.components_of(consent_id), german.consent_yes)
            await emu.press_button(dieter, consent_id, yes["custom_id"])
            await emu.wait_for_call(lambda c: len(svc.jobs) == 2, wait_s=15.0)
        finally:
            await h.stop()
        assert [job.get("face") for job in svc.jobs] == [None, 0]
        assert svc.consents[("discord", str(emu.alice.id))]["language"] == "de"


def _pair_photo() -> bytes:
    with Image.open(io.BytesIO(astronaut_bytes())) as portrait:
        pair = Image.new("RGB", (portrait.width * 2, portrait.height))
        pair.paste(portrait.convert("RGB"), (0, 0))
        pair.paste(portrait.convert("RGB"), (portrait.width, 0))
    out = io.BytesIO()
    pair.save(out, format="JPEG", quality=90)
    return out.getvalue()
