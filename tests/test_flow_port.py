"""The shared flow driven directly through a recording ``ChatPort`` (no chat platform) against a
real service on loopback: what a skin can rely on when its platform misbehaves."""

from __future__ import annotations

import asyncio
import gc
import io
import time
import warnings
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from images import astronaut_bytes, jpeg_bytes
from PIL import Image
from servicekit import running_service

from bot.client import ServiceClient
from bot.flow import Button, Chat, Clip, Flow, FlowOptions, ImageRef, Incoming, Rows, Undeliverable
from bot.state import BotState, JobRecord, UserSettings
from bot.texts import CONSENT_WORDING_VERSION
from bot.texts import ENGLISH as texts

CHAT = Chat("42", "private")


def _small_portrait(side: int = 200) -> bytes:
    """The public-domain astronaut at ``side`` px: a human face (consent is asked)."""
    with Image.open(io.BytesIO(astronaut_bytes())) as portrait:
        small = portrait.convert("RGB").resize((side, side))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=90)
    return out.getvalue()


PORTRAIT = _small_portrait()


@dataclass
class RecordingPort:
    """A ChatPort that records everything; ``broken_edits`` makes every edit fail and
    ``undeliverable`` every clip upload."""

    broken_edits: bool = False
    undeliverable: bool = False
    sent: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    clips: list[Clip] = field(default_factory=list)
    keyboards: list[tuple[Rows, str]] = field(default_factory=list)  # (rows, attach_to)
    uploads: int = 0
    photo: bytes = field(default_factory=lambda: PORTRAIT)  # what fetch_image returns
    pictures: list[bytes] = field(default_factory=list)
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
        self,
        chat: Chat,
        text: str,
        rows: Rows,
        *,
        reply_to: str = "",
        private: bool = False,
        attach_to: str = "",
    ) -> str:
        self.keyboards.append((rows, attach_to))
        message_id = self._next("keyboard", text)
        return attach_to or message_id

    async def edit_keyboard(self, chat: Chat, message_id: str, rows: Rows | None) -> None:
        self._next("keyboard-edit", "")

    async def send_clips(self, chat: Chat, clips: Sequence[Clip], *, final: bool) -> list[str]:
        self.uploads += 1
        if self.undeliverable:
            raise Undeliverable("the clips cannot be made small enough for this channel")
        self.clips.extend(clips)
        message_id = self._next("clips", str(len(clips)))
        return [message_id] * len(clips)

    async def answer_callback(
        self, callback_id: str, text: str = "", *, alert: bool = False
    ) -> None:
        self._next("answer", text)

    async def send_picture_keyboard(
        self,
        chat: Chat,
        text: str,
        picture: bytes,
        rows: Rows,
        *,
        reply_to: str = "",
        private: bool = False,
    ) -> str:
        self.pictures.append(picture)
        self.keyboards.append((rows, ""))
        return self._next("picture-keyboard", text)

    async def fetch_image(self, image: ImageRef) -> bytes:
        return self.photo

    async def wait(self, kind: str, needle: str = "") -> None:
        async with asyncio.timeout(60):
            while not any(k == kind and needle in t for k, t in self.sent):
                self.changed.clear()
                await self.changed.wait()

    def button(self, label: str) -> Button:
        """The last keyboard's button whose label starts with ``label``."""
        rows, _ = self.keyboards[-1]
        return next(b for row in rows for b in row if b.label.startswith(label))


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
    from moderation.requester import Requester

    await client.consent_put(Requester("test", user_id, CHAT.id), CONSENT_WORDING_VERSION)


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
    from moderation.requester import Requester

    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "6")
        await flow.on_animate(Incoming("e1", CHAT, "6", "1"), ImageRef("photo-1"), "slow blink")
        await port.wait("text", "Queued")
        await client.consent_delete(Requester("test", "6", CHAT.id))
        while not any(t in {texts.cancelled, texts.expired} for _, t in port.sent):
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
        texts.not_image,
        texts.too_large(0),
        texts.need_photo("test"),
        texts.expired,
    ]


async def test_request_options_survive_consent_and_leave_settings_alone(tmp_path: Path) -> None:
    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, _):
        # No consent yet: the question comes first, and the answer starts the request as asked.
        await flow.on_animate(
            Incoming("e1", CHAT, "5", "1"), ImageRef("p"), "slow blink", variations=1, seconds=2.0
        )
        await port.wait("keyboard", texts.consent_question)
        await flow.on_button(Incoming("e2", CHAT, "5", "2"), "cb", port.button("✅").token)
        await port.wait("keyboard", "Pick your favourite")
        assert [c.index for c in port.clips] == [1]  # 1 take, not the default 2
        # A photo without the motion keeps its options while the flow asks for the motion.
        await flow.on_animate(Incoming("e3", CHAT, "5", "3"), ImageRef("p"), "", variations=3)
        await port.wait("text", texts.ask_motion)
        await flow.on_text(Incoming("e4", CHAT, "5", "4"), "gentle breathing")
        await port.wait("keyboard", "of the 3 takes")
        await flow.on_settings(Incoming("e5", CHAT, "5", "5"), "")
        await port.wait("text", "Your defaults")
    summary = next(t for k, t in port.sent if t.startswith("Your defaults"))
    assert summary.startswith("Your defaults: 2 takes, 1 s, normal motion, language: English.")


@pytest.mark.parametrize(
    ("variations", "seconds", "problem"),
    [
        (0, None, "variations must be 1-6, not 0"),
        (7, None, "variations must be 1-6, not 7"),
        (None, 9.0, "seconds must be 2-5, not 9"),
        (None, float("nan"), "seconds must be 2-5, not nan"),
    ],
)
async def test_unusable_request_options_get_one_line(
    tmp_path: Path, variations: int | None, seconds: float | None, problem: str
) -> None:
    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, _):
        ev = Incoming("e1", CHAT, "5", "1")
        await flow.on_animate(ev, ImageRef("p"), "blink", variations=variations, seconds=seconds)
    assert port.sent == [("text", texts.bad_request(problem))]


async def test_buttons_go_on_the_clips_message_when_it_holds_every_take(tmp_path: Path) -> None:
    port = RecordingPort()
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "4")
        await flow.on_animate(Incoming("e1", CHAT, "4", "1"), ImageRef("p"), "slow blink")
        await port.wait("keyboard", "Pick your favourite")
    clips_message = str(next(i for i, (k, _) in enumerate(port.sent, 1) if k == "clips"))
    assert [attach_to for _, attach_to in port.keyboards] == [clips_message]


async def test_clips_that_can_never_be_sent_end_the_job_once(tmp_path: Path) -> None:
    port = RecordingPort(undeliverable=True)
    async with flow_on_service(tmp_path, port) as (flow, client):
        await consented(flow, client, "3")
        await flow.on_animate(Incoming("e1", CHAT, "3", "1"), ImageRef("p"), "slow blink")
        await port.wait("edit", "could not send these clips")
        await asyncio.sleep(0.6)  # a retry would come after 0.5 s
    assert port.uploads == 1
    assert not port.keyboards
    assert port.sent[-1] == (
        "edit",
        texts.undeliverable("the clips cannot be made small enough for this channel"),
    )


async def test_closing_at_once_leaves_no_coroutine_unawaited(tmp_path: Path) -> None:
    """Background work cancelled before it ran (resumed, then the bot stops) is closed."""
    with BotState.open(tmp_path / "bot.sqlite3") as state:
        for job_id, chat_kind in (("r" * 32, "private"), ("v" * 32, "group")):
            state.add_job(
                JobRecord(job_id, "1", chat_kind, "2", "", "p", "p.jpg", "blink", 1, 2.0, 1.0)
            )
        state.set_delivered("v" * 32, "9", vote_deadline=time.time() + 60)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with aiohttp.ClientSession() as http:
                client = ServiceClient(http, "http://127.0.0.1:9", "token")
                async with Flow(RecordingPort(), client, state, FlowOptions()):
                    pass  # resume spawned a watch and a vote; leaving cancels both unstarted
            gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []


async def test_a_photo_the_service_cannot_use_is_told_before_any_question(tmp_path: Path) -> None:
    port = RecordingPort(photo=b"This is text renamed to photo.jpg\n" * 4)
    async with flow_on_service(tmp_path, port) as (flow, _):
        await flow.on_animate(Incoming("e1", CHAT, "5", "1"), ImageRef("p"), "slow blink")
        await port.wait("text", "I can't use that")
    assert port.keyboards == [] and port.clips == []


async def test_without_a_face_no_consent_is_asked(tmp_path: Path) -> None:
    port = RecordingPort(photo=jpeg_bytes(160, 200))  # smooth colours: no face
    async with flow_on_service(tmp_path, port) as (flow, _):
        await flow.on_animate(Incoming("e1", CHAT, "5", "1"), ImageRef("p"), "gentle breathing")
        await port.wait("keyboard", "Pick your favourite")
    assert not [t for k, t in port.sent if t == texts.consent_question]


async def test_a_stale_face_button_is_expired(tmp_path: Path) -> None:
    port = RecordingPort(photo=_pair())
    async with flow_on_service(tmp_path, port) as (flow, _):
        await flow.on_animate(Incoming("e1", CHAT, "5", "1"), ImageRef("p"), "slow blink")
        await port.wait("picture-keyboard", "2 people")
        rows, _ = port.keyboards[-1]
        assert [b.label for row in rows for b in row] == ["1 · Left", "2 · Right"]
        with Image.open(io.BytesIO(port.pictures[-1])) as strip:
            assert strip.format == "PNG"
        left = port.button("1 ·").token
        await flow.on_button(Incoming("e2", CHAT, "6", "9"), "cb1", left)  # someone else
        await flow.on_button(Incoming("e3", CHAT, "5", "9"), "cb2", left)
        await port.wait("keyboard", texts.consent_question)
        await flow.on_button(Incoming("e4", CHAT, "5", "9"), "cb3", left)  # pressed again
    answers = [t for k, t in port.sent if k == "answer"]
    assert answers == [texts.not_yours, texts.face_chosen("Left"), texts.expired]


def _pair() -> bytes:
    with Image.open(io.BytesIO(astronaut_bytes())) as portrait:
        pair = Image.new("RGB", (portrait.width * 2, portrait.height))
        pair.paste(portrait.convert("RGB"), (0, 0))
        pair.paste(portrait.convert("RGB"), (portrait.width, 0))
    out = io.BytesIO()
    pair.save(out, format="JPEG", quality=90)
    return out.getvalue()
