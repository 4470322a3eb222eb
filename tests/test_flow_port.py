"""The shared flow driven directly through a recording ``ChatPort`` (no chat platform) against a
real service on loopback: what a skin can rely on when its platform misbehaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from images import jpeg_bytes
from servicekit import running_service

from bot import texts
from bot.client import ServiceClient
from bot.flow import Chat, Clip, Flow, FlowOptions, ImageRef, Incoming, Rows
from bot.state import BotState, UserSettings

CHAT = Chat("42", "private")


@dataclass
class RecordingPort:
    """A ChatPort that records everything; ``broken_edits`` makes every edit fail."""

    broken_edits: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    clips: list[Clip] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: int = 0

    platform = "test"
    max_image_bytes = 1_000_000
    clips_per_message = 10

    def _next(self, kind: str, text: str) -> str:
        self.sent.append((kind, text))
        self.changed.set()
        self._ids += 1
        return str(self._ids)

    async def send_text(
        self, chat: Chat, text: str, *, reply_to: str = "", private: bool = False
    ) -> str:
        return self._next("text", text)

    async def edit_text(self, chat: Chat, message_id: str, text: str) -> None:
        if self.broken_edits:
            raise RuntimeError("the platform refused the edit")
        self._next("edit", text)

    async def send_keyboard(
        self, chat: Chat, text: str, rows: Rows, *, reply_to: str = "", private: bool = False
    ) -> str:
        return self._next("keyboard", text)

    async def edit_keyboard(self, chat: Chat, message_id: str, rows: Rows | None) -> None:
        self._next("keyboard-edit", "")

    async def send_clips(self, chat: Chat, clips: Sequence[Clip], *, final: bool) -> list[str]:
        self.clips.extend(clips)
        message_id = self._next("clips", str(len(clips)))
        return [message_id] * len(clips)

    async def answer_callback(
        self, callback_id: str, text: str = "", *, alert: bool = False
    ) -> None:
        self._next("answer", text)

    async def fetch_image(self, image: ImageRef) -> bytes:
        return jpeg_bytes(160, 200)

    async def wait(self, kind: str, needle: str = "") -> None:
        async with asyncio.timeout(60):
            while not any(k == kind and needle in t for k, t in self.sent):
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def flow_on_service(
    tmp_path: Path, port: RecordingPort
) -> AsyncIterator[tuple[Flow, ServiceClient]]:
    async with (
        running_service(tmp_path / "service", backend="sleep", sleep_seconds=0.3) as svc,
        aiohttp.ClientSession() as http,
    ):
        client = ServiceClient(http, svc.url, svc.token)
        options = FlowOptions(defaults=UserSettings(variations=2, seconds=1.0), clip_size=128)
        with BotState.open(tmp_path / "bot.sqlite3") as state:
            async with Flow(port, client, state, options) as flow:
                yield flow, client


async def consented(flow: Flow, client: ServiceClient, user_id: str) -> None:
    from moderation.gate import Requester

    await client.consent_put(Requester("test", user_id, CHAT.id), texts.CONSENT_WORDING_VERSION)


async def test_delivery_does_not_wait_on_failing_progress_edits(tmp_path: Path) -> None:
    port = RecordingPort(broken_edits=True)
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "7")
        await flow.on_animate(Incoming("e1", CHAT, "7", "1"), ImageRef("photo-1"), "slow blink")
        await port.wait("keyboard", "Pick your favourite")
    assert [c.index for c in port.clips] == [1, 2]
    assert port.sent[0][0] == "text" and "Queued" in port.sent[0][1]
    assert not [k for k, _ in port.sent if k == "edit"]


async def test_revoking_consent_mid_job_ends_it_with_a_clear_message(tmp_path: Path) -> None:
    from moderation.gate import Requester

    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "6")
        await flow.on_animate(Incoming("e1", CHAT, "6", "1"), ImageRef("photo-1"), "slow blink")
        await port.wait("text", "Queued")
        await client.consent_delete(Requester("test", "6", CHAT.id))
        while not any(t in {texts.CANCELLED, texts.EXPIRED} for _, t in port.sent):
            port.changed.clear()
            await asyncio.wait_for(port.changed.wait(), 60)
    assert not port.clips


async def test_forget_stops_delivery_and_a_repeated_event_runs_once(tmp_path: Path) -> None:
    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "8")
        await flow.on_animate(Incoming("e1", CHAT, "8", "1"), ImageRef("photo-1"), "slow blink")
        await port.wait("text", "Queued")
        await flow.on_forget(Incoming("e2", CHAT, "8", "2"))
        await port.wait("text", "Deleted")
        await flow.on_animate(Incoming("e1", CHAT, "8", "1"), ImageRef("photo-1"), "again")
    assert not port.clips
    assert len([t for k, t in port.sent if "Queued" in t]) == 1  # e1 twice: processed once


async def test_unusable_images_are_refused_before_any_upload(tmp_path: Path) -> None:
    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, _):
        await flow.on_animate(
            Incoming("a", CHAT, "9", "1"), ImageRef("d", "a.pdf", "application/pdf"), "blink"
        )
        await flow.on_animate(Incoming("b", CHAT, "9", "2"), ImageRef("p", size=5_000_000), "blink")
        await flow.on_animate(Incoming("c", CHAT, "9", "3"), None, "blink")
        await flow.on_button(Incoming("d", CHAT, "9", "4"), "cb1", "not-a-token")
    assert [t for _, t in port.sent] == [
        texts.NOT_IMAGE,
        texts.TOO_LARGE.format(limit_mb=0),
        texts.need_photo("test"),
        texts.EXPIRED,
    ]
