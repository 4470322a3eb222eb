"""Time from a user's photo to the first and the last clip in chat, over the Telegram emulator.

Used by ``benchmarks/chat_first_clip.py`` (warp backend, real sizes) and
``tests/test_chat_progressive.py`` (the order: the first clip is in chat before the job is done).
Consent is recorded up front (``PUT /v1/users/telegram/{id}/consent``), so the clock starts when
the photo with its ``/animate`` caption reaches the bot, as after a user's consent.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from emulators.telegram_api import ChatRef, TelegramEmulator
from images import jpeg_bytes
from servicekit import running_service

from bot.telegram.app import run_bot
from generation.service.app import STORE
from generation.service.jobs import JobState
from livingphoto.settings import Settings
from moderation.gate import Requester

PROMPT = "subtle blink, slight head tilt, gentle breathing"


@dataclass(frozen=True)
class ChatTiming:
    """Seconds from the photo: first take in chat, last take in chat, the service's job done."""

    first_clip_s: float
    last_clip_s: float
    job_done_s: float
    takes: int
    accepted_s: float = 0.0  # the service accepted the job (photo fetched, moderated)
    started_s: float = 0.0  # a worker started it


async def telegram_timings(
    tmp_path: Path,
    *,
    runs: int,
    takes: int,
    seconds: float,
    size: int,
    backend: str = "warp",
    photo: bytes | None = None,
    **service: Any,
) -> list[ChatTiming]:
    """Run ``runs`` jobs one after another through the real Telegram bot and the service,
    each with ``photo`` (default: a synthetic 480x600 portrait)."""
    photo = photo if photo is not None else jpeg_bytes(480, 600)
    results: list[ChatTiming] = []
    async with (
        TelegramEmulator() as tg,
        running_service(tmp_path / "service", backend=backend, **service) as svc,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {svc.token}"}) as http,
    ):
        alice = tg.alice
        chat = tg.private_chat(alice)
        async with http.put(
            f"{svc.url}/v1/users/telegram/{alice.id}/consent", json={"chat_id": str(chat.id)}
        ) as response:
            assert response.status == 200, await response.text()
        env = {
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.api_base_url,
            "TELEGRAM_FILE_BASE_URL": tg.file_base_url,
            "LIVINGPHOTO_SERVICE_URL": svc.url,
            "LIVINGPHOTO_SERVICE_TOKEN": svc.token,
            "LIVINGPHOTO_DATA_DIR": str(tmp_path / "bot-data"),
            "LIVINGPHOTO_BOT_VARIATIONS": str(takes),
            "LIVINGPHOTO_BOT_SECONDS": str(seconds),
            "LIVINGPHOTO_BOT_CLIP_SIZE": str(size),
        }
        settings = Settings.from_env(env, dotenv_path=tmp_path / "absent.env")
        stop = asyncio.Event()
        polls = tg.polls_started
        bot = asyncio.create_task(run_bot(settings, stop))
        try:
            await tg.wait_until(lambda: tg.polls_started > polls)
            for run in range(runs):
                before = len(tg.calls_of("sendAnimation", chat))
                keyboards = _keyboards(tg, chat)
                started_wall, started = time.time(), time.monotonic()
                tg.send_photo(alice, chat, photo, caption=f"/animate {PROMPT}")
                await tg.wait_until(functools.partial(_more_keyboards, tg, chat, keyboards), 300.0)
                clips = tg.calls_of("sendAnimation", chat)[before:]
                assert len(clips) == takes, f"run {run + 1}: {len(clips)} clips"
                assert svc.app is not None
                job = svc.app[STORE].user_jobs(Requester("telegram", str(alice.id)))[-1]
                assert job.state is JobState.DONE and job.finished_at is not None
                results.append(
                    ChatTiming(
                        first_clip_s=clips[0].at - started,
                        last_clip_s=clips[-1].at - started,
                        job_done_s=job.finished_at - started_wall,
                        takes=len(clips),
                        accepted_s=job.created_at - started_wall,
                        started_s=(job.started_at or job.created_at) - started_wall,
                    )
                )
        finally:
            stop.set()
            await asyncio.wait_for(bot, timeout=60)
    return results


def _more_keyboards(tg: TelegramEmulator, chat: ChatRef, before: int) -> bool:
    return _keyboards(tg, chat) > before


def _keyboards(tg: TelegramEmulator, chat: ChatRef) -> int:
    """How many delivery keyboards ("Pick your favourite ...") the bot has sent to ``chat``."""
    return len([t for t in tg.texts_to(chat) if "Pick your favourite" in t])
