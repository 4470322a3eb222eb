"""Photos as phones send them, through both bots (issue 13 part 2): a HEIC sent to Telegram as a
document and through the "photo" path, an AVIF document and a HEIC named ``.jpg``; on Discord a
HEIC attachment to ``/animate`` and an AVIF attached to a DM. Each must come back as clips.

Real python-telegram-bot / discord.py against the emulators in tests/emulators, and a real service
(warp backend) on loopback, through the harnesses of test_telegram_bot.py / test_discord_bot.py.
"""

from __future__ import annotations

from pathlib import Path

import images
import phone_images
import pytest
import test_discord_bot as discord_suite
import test_telegram_bot as telegram_suite

pytestmark = pytest.mark.timeout(180)

HEIC = phone_images.heic_bytes(images.portrait_rgb(160, 200))
AVIF = phone_images.avif_bytes(images.portrait_rgb(160, 200))


async def test_telegram_heic_and_avif_as_documents_and_photo(tmp_path: Path) -> None:
    async with telegram_suite.harness(tmp_path) as h:
        tg, alice = h.tg, h.tg.alice
        chat = tg.private_chat(alice)
        async with h.bot():
            # 1. HEIC as a document (how iPhone users keep the original)
            tg.send_document(alice, chat, HEIC, "IMG_0001.HEIC", "image/heic", "/animate blink")
            # no consent question: the bot looks first, and these pictures show no human face
            clips, _ = await telegram_suite.delivered(h, chat, rounds=1)
            assert all(c.files["animation"][4:8] == b"ftyp" for c in clips)
            # 2. HEIC bytes through the "photo" path (declared image/jpeg, photo.jpg)
            tg.send_photo(alice, chat, HEIC, caption="/animate gentle breathing")
            await telegram_suite.delivered(h, chat, rounds=2)
            # 3. AVIF saved off the web, as a document
            tg.send_document(alice, chat, AVIF, "download.avif", "image/avif", "/animate blink")
            await telegram_suite.delivered(h, chat, rounds=3)
            # 4. a HEIC renamed .jpg: the content decides, not the name or the declared type
            tg.send_document(alice, chat, HEIC, "IMG_0002.jpg", "image/jpeg", "/animate blink")
            await telegram_suite.delivered(h, chat, rounds=4)
        jobs = h.state_jobs()
        assert len(jobs) == 4
        for job in jobs:
            assert (await h.service_job(job.job_id))["state"] == "done"


async def test_discord_heic_attachment_and_avif_in_a_dm(tmp_path: Path) -> None:
    async with discord_suite.harness(tmp_path) as h:
        emu = h.emu
        await h.give_consent(emu.alice)
        mark = len(emu.calls)
        heic = emu.upload("IMG_0001.HEIC", HEIC, "image/heic")
        await emu.slash_command(
            emu.alice,
            emu.channel_id,
            "animate",
            {"photo": heic, "motion": "subtle blink", "variations": 1, "seconds": 2.0},
        )
        clips = await h.clips_message(emu.channel_id, mark, count=1)
        assert clips.files[0].filename == "take-1.mp4"
        assert clips.files[0].data[4:8] == b"ftyp"

        dm = emu.dm_channel(emu.alice)
        mark = len(emu.calls)
        avif = emu.upload("download.avif", AVIF, "image/avif")
        await emu.send_message(emu.alice, dm, "gentle breathing", [avif])
        clips = await h.clips_message(dm, mark, count=3)
        assert all(f.data[4:8] == b"ftyp" for f in clips.files if f.filename.endswith(".mp4"))
