"""The one platform-neutral conversation flow shared by the Telegram and Discord bots.

A *skin* (``bot/telegram``, ``bot/discord``) turns platform events into calls on ``Flow`` and
implements ``ChatPort`` so the flow can talk back. The flow owns every decision: consent,
submitting jobs, the one status message edited in place, delivering variations, the keyboard,
votes, the final pick, child jobs (re-roll / less / more / vary), settings, /forget, and resuming
after a restart. No conversation logic lives in a skin.

USAGE (what a skin does)::

    async with aiohttp.ClientSession() as http:                       # opened once, passed in
        client = ServiceClient(http, settings.bot.service_url, settings.bot.service_token)
        with BotState.open(state_path) as state:                        # SQLite, survives restarts
            async with Flow(port, client, state, FlowOptions.from_settings(settings.bot)) as flow:
                ...  # route platform events to flow.on_* until asked to stop

``async with Flow(...)`` resumes pending jobs (re-attaches to their progress and delivers any
variation not yet sent) and cancels its background tasks on exit.

PORT (what a skin implements; every id is an opaque ``str`` the skin chose)::

    class ChatPort(Protocol):
        platform: str                      # "telegram" | "discord" (requester.platform at the service)
        max_image_bytes: int               # the platform's download limit (Telegram: 20 MB)
        clips_per_message: int             # Telegram 1 (sendAnimation each), Discord up to 10
        async def send_text(chat, text, *, reply_to="", private=False) -> message_id
        async def edit_text(chat, message_id, text) -> None             # also removes its buttons
        async def send_keyboard(chat, text, rows, *, reply_to="", private=False, attach_to="")
                                                                          -> message_id
        async def edit_keyboard(chat, message_id, rows | None) -> None   # None removes the keyboard
        async def send_clips(chat, clips, *, final) -> list[message_id]  # one id per clip, in order
                                                        # raises Undeliverable: never sendable here
        async def answer_callback(callback_id, text="", *, alert=False) -> None
        async def fetch_image(image: ImageRef) -> bytes
        async def send_picture_keyboard(chat, text, picture_png, rows, *, reply_to="",
                                        private=False) -> message_id   # the face strip

- ``private=True`` marks a notice meant only for the requester (consent question, refusals,
  "this request has expired"): a skin that can (Discord ephemeral replies) shows it to them only.
- ``reply_to`` is the ``Incoming.message_id`` of the event being answered ("" for none). A Discord
  skin may set ``Incoming.message_id`` to its interaction id and answer through it.
- ``send_clips`` gets at most ``clips_per_message`` clips: post one message per clip (Telegram
  ``sendAnimation``) or one message holding them all (Discord); return one message id per clip
  either way (repeat the id if shared).
  ``final=True`` is the winner sent once more. A skin may re-encode to fit its upload limit;
  when the clips can never be sent on this platform or channel (no encode fits) it raises
  ``Undeliverable``: the flow tells the user why, once, and does not retry.
- ``attach_to`` (``send_keyboard``) is the message holding all of a job's takes, when they went
  out as one message: a skin that can (Discord) puts the text and buttons on that message and
  returns its id; a skin that cannot (Telegram: one message per take) sends a new message.
- ``Button.token`` is a short opaque id (<= 16 chars) stored in ``BotState``: put it in the
  callback data / ``custom_id`` (e.g. ``"lp:" + token``) and hand it back to ``on_button``. The
  flow validates it: forged or expired tokens get "this request has expired", never an exception.

EVENTS (what a skin calls; each takes an ``Incoming(event_id, chat=Chat(id, "private"|"group"),
user_id, message_id, language, chat_language, group_id, admin)`` whose ``event_id`` is unique per
platform event; calling twice with the same ``event_id`` is a no-op, so duplicated updates are
processed once)::

    await flow.on_help(ev)                              # /start, /help
    await flow.on_animate(ev, image, prompt, variations=None, seconds=None)
                                                        # image: ImageRef | None; prompt may be "";
                                                        # the flow checks ImageRef.mime and .size;
                                                        # variations/seconds: this request only
                                                        # (None: the user's /settings), kept
                                                        # while the flow asks motion or consent
    await flow.on_photo(ev, image)                      # a photo with no command (private: asks the motion)
    handled = await flow.on_text(ev, text)              # plain text: the motion if the flow asked
                                                        # for it, else (private) how to send a photo
    await flow.on_bad_file(ev, reason)                  # "not_image" | "too_large": a clear message
    await flow.on_button(ev, callback_id, token)        # always answers the callback; ev.message_id
                                                        # is the message carrying the button
    await flow.on_reaction(ev, message_id, emojis)      # the user's current reactions on a message
    await flow.on_consent(ev, action)                   # "show" | "revoke"
    await flow.on_forget(ev)
    await flow.on_settings(ev, args)                    # "" shows; "variations 4", "seconds 3",
                                                        # "motion subtle", "language es|auto";
                                                        # "chat language de" (ev.admin only)

LANGUAGE: every text comes from ``bot.texts.Texts`` in one language (``bot.i18n.LANGUAGES``),
chosen per event as: the user's own /settings choice, else ``Incoming.language`` (the platform's
language of the user), else the chat's (``group_id``'s) default set by an admin, else
``Incoming.chat_language`` (a guild's locale), else English. A job keeps the language it was
asked in for its progress, takes and buttons; the consent ledger records the language in which
the user read the consent question.

LOOKING FIRST: for a new photo the flow downloads it and asks the service to inspect it in memory
(``POST /v1/inspect``; nothing is stored). No human face: submitted at once, no consent question.
Several faces: one button per face, labelled by position, on a contact strip of the crops; the
chosen face goes to the service as ``face``. A human face: consent, unless on record. While a
question waits, only the platform's reference to the photo is kept (a draft), never its bytes.

Reactions: in a private chat the requester's 👍 ❤️ 🔥 (or 1️⃣…) on a variation picks it at once.
In a group, members' reactions are votes for ``FlowOptions.vote_window_s``; the requester's pick
(button or reaction) ends the vote at once; at the end of the window the most-voted take wins.
Only the requester may press a job's buttons; others are told so in the callback answer. A skin
must not report the bot's own reactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, Protocol

from bot import i18n
from bot.client import JobRequest, JobStatus, ParentRef, ServiceClient, ServiceError, Subject
from bot.config import BotSettings
from bot.faces import contact_strip
from bot.state import BotState, Draft, JobRecord, UserSettings, new_id
from bot.texts import CONSENT_WORDING_VERSION, Texts, for_language
from livingphoto.errors import (
    ConsentRequired,
    LivingPhotoError,
    PolicyRefusal,
    RateLimited,
    UsageError,
)
from moderation.requester import Requester

log = logging.getLogger(__name__)

ChatKind = Literal["private", "group"]
BadFile = Literal["not_image", "too_large"]
ConsentAction = Literal["show", "revoke"]

PICK_EMOJIS: frozenset[str] = frozenset({"👍", "❤", "❤️", "🔥"})
NUMBER_EMOJIS: Mapping[str, int] = MappingProxyType(
    {f"{n}\ufe0f\u20e3": n for n in range(1, 10)} | {f"{n}\u20e3": n for n in range(1, 10)}
)
IMAGE_TYPES: frozenset[str] = frozenset(
    {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/tiff", "image/heic"}
    # phone formats (moderation.intake sniffs the real format; these only pass the first gate)
    | {"image/gif", "image/heif", "image/heic-sequence", "image/heif-sequence", "image/avif"}
)
MAX_DELIVERY_ATTEMPTS = 10  # about 4 minutes of retries, then the user is told
MIN_VARIATIONS, MAX_VARIATIONS = 1, 6
MIN_SECONDS, MAX_SECONDS = 2.0, 5.0
_CHILD_ACTIONS: frozenset[str] = frozenset({"reroll", "less", "more", "vary"})
MAX_FACES = 10  # buttons offered for a group photo (faces left to right)
FACES_PER_ROW = 5  # Discord's most buttons in a row


class Undeliverable(LivingPhotoError):
    """Raised by ``ChatPort.send_clips`` when the clips can never be sent there (say, no encode
    fits the channel's upload limit). ``str(error)`` is a one-line reason shown to the user."""


@dataclass(frozen=True)
class Chat:
    id: str
    kind: ChatKind


@dataclass(frozen=True)
class Incoming:
    """One platform event, parsed by the skin."""

    event_id: str  # unique per platform event (update id, interaction id): the dedup key
    chat: Chat
    user_id: str
    message_id: str = ""  # the user's message, or the message carrying the pressed button
    language: str = (
        ""  # the user's language tag as the platform says it ("es", "pt-BR"; "" unknown)
    )
    chat_language: str = ""  # the community's language (a Discord guild locale); "" unknown
    group_id: str = ""  # the community whose admin default applies (a Discord guild); "": the chat
    admin: bool = False  # the user may change the chat's settings (a chat admin, or a private chat)


@dataclass(frozen=True)
class ImageRef:
    """A photo as the platform knows it; fetched only when a job is submitted."""

    ref: str  # Telegram file_id, Discord attachment URL, ...
    filename: str = "photo.jpg"
    mime: str = "image/jpeg"  # "" when the platform did not say
    size: int = 0  # bytes, 0 when unknown


@dataclass(frozen=True)
class Button:
    label: str
    token: str  # opaque, <= 16 chars; hand back to Flow.on_button


@dataclass(frozen=True)
class Clip:
    index: int  # the variation number k (1-based)
    data: bytes  # H.264 MP4, soundless, loops
    caption: str
    filename: str


Rows = Sequence[Sequence[Button]]


class ChatPort(Protocol):
    """What a platform skin implements (see the module docstring)."""

    @property
    def platform(self) -> str: ...

    @property
    def max_image_bytes(self) -> int: ...

    @property
    def clips_per_message(self) -> int: ...

    async def send_text(
        self, chat: Chat, text: str, *, reply_to: str = "", private: bool = False
    ) -> str: ...

    async def edit_text(self, chat: Chat, message_id: str, text: str) -> None: ...

    async def send_keyboard(
        self,
        chat: Chat,
        text: str,
        rows: Rows,
        *,
        reply_to: str = "",
        private: bool = False,
        attach_to: str = "",
    ) -> str: ...

    async def edit_keyboard(self, chat: Chat, message_id: str, rows: Rows | None) -> None: ...

    async def send_clips(self, chat: Chat, clips: Sequence[Clip], *, final: bool) -> list[str]:
        """One message id per clip; raises ``Undeliverable`` when they can never be sent."""
        ...

    async def answer_callback(
        self, callback_id: str, text: str = "", *, alert: bool = False
    ) -> None: ...

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
        """A PNG with ``text`` and buttons in one message (the face strip of a group photo)."""
        ...

    async def fetch_image(self, image: ImageRef) -> bytes:
        """The photo's bytes; raises ``UsageError`` when it can no longer be fetched."""
        ...


@dataclass(frozen=True)
class FlowOptions:
    vote_window_s: float = 300.0
    callback_ttl_s: float = 2 * 24 * 3600.0
    motion_question_ttl_s: float = 3600.0
    defaults: UserSettings = field(default_factory=UserSettings)
    clip_size: int = 0  # asked of the service; 0 = its default

    @classmethod
    def from_settings(cls, settings: BotSettings) -> FlowOptions:
        return cls(
            vote_window_s=settings.vote_window_s,
            callback_ttl_s=settings.callback_ttl_s,
            defaults=UserSettings(
                variations=min(6, settings.default_variations),
                seconds=settings.default_seconds,
            ),
            clip_size=settings.clip_size,
        )


@dataclass(frozen=True)
class _Spec:
    """Everything needed to submit one job."""

    chat: Chat
    user_id: str
    reply_to: str
    image: ImageRef
    prompt: str
    variations: int
    seconds: float
    motion_scale: float | None  # None for a child: the service scales its parent's
    parent: ParentRef | None = None
    idempotency_key: str = ""
    language: str = i18n.DEFAULT_LANGUAGE  # the requester's: every text of this job
    face: int | None = None  # the chosen face (0-based, left to right); None: the service's


class Flow:
    """The conversation: one instance per running bot, entered with ``async with``."""

    def __init__(
        self, port: ChatPort, client: ServiceClient, state: BotState, options: FlowOptions
    ) -> None:
        self._port = port
        self._client = client
        self._state = state
        self._options = options
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def __aenter__(self) -> Flow:
        await self.resume()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def resume(self) -> None:
        """Re-attach to every job a previous run left unfinished."""
        for job in self._state.jobs_in_phase("running"):
            log.info("resuming job", extra={"job_id": job.job_id})
            self._spawn(f"watch:{job.job_id}", self._watch(job.job_id))
        for job in self._state.jobs_in_phase("delivered"):
            if job.vote_deadline > 0:
                self._spawn(f"vote:{job.job_id}", self._close_vote(job.job_id))

    # -- events ------------------------------------------------------------------------------
    async def on_help(self, ev: Incoming) -> None:
        if self._state.claim_event(ev.event_id):
            await self._port.send_text(
                ev.chat, self._t(ev).help_text(self._port.platform), reply_to=ev.message_id
            )

    async def on_bad_file(self, ev: Incoming, reason: BadFile) -> None:
        if self._state.claim_event(ev.event_id):
            await self._port.send_text(
                ev.chat, self._bad_file_text(reason, self._t(ev)), reply_to=ev.message_id
            )

    async def on_photo(self, ev: Incoming, image: ImageRef) -> None:
        """A photo with no command: in a private chat, ask for the motion."""
        if ev.chat.kind != "private" or not self._state.claim_event(ev.event_id):
            return
        if (problem := self._image_problem(image)) is not None:
            await self._port.send_text(
                ev.chat, self._bad_file_text(problem, self._t(ev)), reply_to=ev.message_id
            )
            return
        self._state.drop_motion_drafts(ev.chat.id, ev.user_id)
        self._state.add_draft(self._draft(ev, image, "", "motion"))
        await self._port.send_text(ev.chat, self._t(ev).ask_motion, reply_to=ev.message_id)

    async def on_text(self, ev: Incoming, text: str) -> bool:
        """Plain text: used as the motion when the flow asked for one. True when consumed."""
        if not self._state.claim_event(ev.event_id):
            return False
        since = time.time() - self._options.motion_question_ttl_s
        draft = self._state.waiting_for_motion(ev.chat.id, ev.user_id, since)
        if draft is None or not text.strip() or self._state.take_draft(draft.draft_id) is None:
            if ev.chat.kind == "private":
                await self._port.send_text(
                    ev.chat, self._t(ev).need_photo(self._port.platform), reply_to=ev.message_id
                )
            return False
        await self._start(self._spec_from_draft(draft, text.strip(), ev.message_id))
        return True

    async def on_animate(
        self,
        ev: Incoming,
        image: ImageRef | None,
        prompt: str,
        *,
        variations: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """A request to animate. ``variations``/``seconds`` apply to this request only (None:
        the user's /settings) and are kept while the flow asks for the motion or consent."""
        if not self._state.claim_event(ev.event_id):
            return
        if (problem := _options_problem(variations, seconds)) is not None:
            await self._port.send_text(
                ev.chat, self._t(ev).bad_request(problem), reply_to=ev.message_id, private=True
            )
            return
        if image is None:
            since = time.time() - self._options.motion_question_ttl_s
            draft = self._state.waiting_for_motion(ev.chat.id, ev.user_id, since)
            if draft is not None and prompt.strip() and self._state.take_draft(draft.draft_id):
                draft = replace(
                    draft,
                    variations=variations or draft.variations,
                    seconds=seconds or draft.seconds,
                )
                await self._start(self._spec_from_draft(draft, prompt.strip(), ev.message_id))
            else:
                await self._port.send_text(
                    ev.chat, self._t(ev).need_photo(self._port.platform), reply_to=ev.message_id
                )
            return
        if (problem := self._image_problem(image)) is not None:
            await self._port.send_text(
                ev.chat, self._bad_file_text(problem, self._t(ev)), reply_to=ev.message_id
            )
            return
        prompt = prompt.strip()
        if not prompt:
            if ev.chat.kind == "private":
                self._state.drop_motion_drafts(ev.chat.id, ev.user_id)
                draft = self._draft(ev, image, "", "motion", variations, seconds)
                self._state.add_draft(draft)
                await self._port.send_text(ev.chat, self._t(ev).ask_motion, reply_to=ev.message_id)
            else:
                await self._port.send_text(
                    ev.chat, self._t(ev).need_motion(self._port.platform), reply_to=ev.message_id
                )
            return
        await self._start(
            self._spec(
                ev.chat,
                ev.user_id,
                ev.message_id,
                image,
                prompt,
                variations,
                seconds,
                idempotency_key=f"{self._port.platform}:{ev.event_id}",
                language=self._language(ev),
            )
        )

    async def on_button(self, ev: Incoming, callback_id: str, token: str) -> None:
        """A pressed button. Always answers the callback; never raises for a bad token."""
        if not self._state.claim_event(ev.event_id):
            return
        t = self._t(ev)
        callback = self._state.callback(token, time.time())
        if callback is None:
            await self._port.answer_callback(callback_id, t.expired, alert=True)
            return
        if callback.action == "face":
            await self._face_answer(ev, callback_id, callback.subject, callback.k)
            return
        if callback.action in {"consent_yes", "consent_no"}:
            await self._consent_answer(ev, callback_id, callback.subject, callback.action)
            return
        if callback.action == "consent_revoke":
            if callback.subject != ev.user_id:
                await self._port.answer_callback(callback_id, t.not_yours)
                return
            await self._revoke(ev, callback_id)
            return
        job = self._state.job(callback.subject)
        if job is None or job.phase != "delivered":
            await self._port.answer_callback(callback_id, t.expired, alert=True)
            return
        if job.user_id != ev.user_id:
            await self._port.answer_callback(callback_id, t.not_yours)
            return
        if callback.action == "pick":
            await self._port.answer_callback(callback_id, t.pick_recorded(callback.k))
            await self._pick(job, callback.k, note="")
            return
        if callback.action in _CHILD_ACTIONS:
            await self._child(ev, callback_id, job, callback.action, callback.k, token)
            return
        await self._port.answer_callback(callback_id, t.expired, alert=True)

    async def on_reaction(self, ev: Incoming, message_id: str, emojis: Sequence[str]) -> None:
        """The user's current reactions on ``message_id`` (empty when they removed them)."""
        if not self._state.claim_event(ev.event_id):
            return
        delivered = self._state.jobs_by_message(ev.chat.id, message_id)
        if not delivered:
            return
        job = delivered[0][0]
        if job.phase != "delivered":
            return
        in_message = [k for _, k in delivered]
        k = reaction_pick(emojis, in_message, list(self._state.deliveries(job.job_id)))
        if ev.user_id == job.user_id:
            if k is not None:
                await self._pick(job, k, note="")
            return
        if ev.chat.kind == "group" and time.time() <= job.vote_deadline:
            self._state.set_vote(job.job_id, ev.user_id, k)

    async def on_consent(self, ev: Incoming, action: ConsentAction) -> None:
        if not self._state.claim_event(ev.event_id):
            return
        requester = self._requester(ev.user_id, ev.chat)
        t = self._t(ev)
        try:
            if action == "revoke":
                await self._client.consent_delete(requester)
                await self._port.send_text(
                    ev.chat, t.consent_revoked, reply_to=ev.message_id, private=True
                )
                return
            record = await self._client.consent_get(requester)
        except ServiceError:
            await self._port.send_text(ev.chat, t.service_down, reply_to=ev.message_id)
            return
        if not record.attested:
            await self._port.send_text(
                ev.chat, t.consent_show_no, reply_to=ev.message_id, private=True
            )
            return
        token = self._state.new_callback(
            "consent_revoke", ev.user_id, 0, self._options.callback_ttl_s
        )
        await self._port.send_keyboard(
            ev.chat,
            t.consent_show_yes(record.at),
            [[Button(t.consent_revoke, token)]],
            reply_to=ev.message_id,
            private=True,
        )

    async def on_forget(self, ev: Incoming) -> None:
        if not self._state.claim_event(ev.event_id):
            return
        try:
            report = await self._client.forget(self._requester(ev.user_id, ev.chat))
        except ServiceError:
            await self._port.send_text(ev.chat, self._t(ev).service_down, reply_to=ev.message_id)
            return
        for job in self._state.user_jobs(ev.user_id):
            for key in (f"watch:{job.job_id}", f"vote:{job.job_id}"):
                task = self._tasks.pop(key, None)
                if task is not None:
                    task.cancel()
        t = self._t(ev)  # before the user's language choice is forgotten too
        local = self._state.forget_user(ev.user_id)
        text = t.forgot(report.jobs, report.files, report.consent_records, sum(local.values()))
        await self._port.send_text(ev.chat, text, reply_to=ev.message_id, private=True)

    async def on_settings(self, ev: Incoming, args: str) -> None:
        """ "" shows; "variations 4", "seconds 3", "motion subtle", "language es" (or "auto")
        change the user's defaults; "chat language de" sets the chat's (or guild's) default
        language, for admins only."""
        if not self._state.claim_event(ev.event_id):
            return
        current = self._state.user_settings(ev.user_id, self._options.defaults)
        words = args.lower().split()
        if words[:2] == ["chat", "language"] and len(words) == 3:
            await self._set_chat_language(ev, words[2])
            return
        if words:
            updated = apply_setting(current, words)
            if updated is None:
                t = self._t(ev)
                code = words[1] if len(words) == 2 and words[0] == "language" else ""
                text = (
                    t.language_unknown(code, i18n.LANGUAGES)
                    if code
                    else t.settings_bad(self._port.platform)
                )
                await self._port.send_text(ev.chat, text, reply_to=ev.message_id, private=True)
                return
            self._state.save_settings(ev.user_id, updated)
            if updated.language != current.language and updated.language:
                await self._port.send_text(
                    ev.chat,
                    self._t(ev).language_set(updated.language),
                    reply_to=ev.message_id,
                    private=True,
                )
                return
            current = updated
        await self._port.send_text(
            ev.chat,
            self._t(ev).settings_summary(
                current.variations,
                current.seconds,
                current.motion,
                self._port.platform,
                self._language(ev),
            ),
            reply_to=ev.message_id,
            private=True,
        )

    async def _set_chat_language(self, ev: Incoming, code: str) -> None:
        t = self._t(ev)
        if not ev.admin:
            await self._port.send_text(ev.chat, t.admin_only, reply_to=ev.message_id, private=True)
            return
        language = i18n.normalize(code)
        if language is None:
            await self._port.send_text(
                ev.chat,
                t.language_unknown(code, i18n.LANGUAGES),
                reply_to=ev.message_id,
                private=True,
            )
            return
        self._state.set_chat_language(ev.group_id or ev.chat.id, language)
        await self._port.send_text(
            ev.chat, for_language(language).chat_language_set(language), reply_to=ev.message_id
        )

    # -- looking at the photo, the choice of a face, consent ---------------------------------
    async def _consent_answer(
        self, ev: Incoming, callback_id: str, draft_id: str, action: str
    ) -> None:
        draft = self._state.draft(draft_id)
        if draft is not None and draft.user_id != ev.user_id:
            await self._port.answer_callback(callback_id, self._t(ev).not_yours)
            return
        draft = self._state.take_draft(draft_id)
        if draft is None:
            await self._port.answer_callback(callback_id, self._t(ev).expired, alert=True)
            return
        self._state.drop_callbacks(draft_id)
        t = for_language(
            draft.language or i18n.DEFAULT_LANGUAGE
        )  # the language the question was in
        chat = Chat(draft.chat_id, "group" if draft.chat_kind == "group" else "private")
        if action == "consent_no":
            await self._port.answer_callback(callback_id)
            await self._port.edit_text(chat, ev.message_id, t.consent_declined)
            return
        requester = self._requester(draft.user_id, chat)
        try:
            # the ledger records which wording, in which language, the user confirmed
            await self._client.consent_put(requester, CONSENT_WORDING_VERSION, t.language)
        except ServiceError:
            await self._port.answer_callback(callback_id, t.service_down, alert=True)
            return
        await self._port.answer_callback(callback_id, t.consent_recorded)
        await self._port.edit_text(chat, ev.message_id, t.consent_recorded)
        await self._submit(self._spec_from_draft(draft, draft.prompt, draft.reply_to))

    async def _revoke(self, ev: Incoming, callback_id: str) -> None:
        t = self._t(ev)
        try:
            await self._client.consent_delete(self._requester(ev.user_id, ev.chat))
        except ServiceError:
            await self._port.answer_callback(callback_id, t.service_down, alert=True)
            return
        self._state.drop_callbacks(ev.user_id)
        await self._port.answer_callback(callback_id, t.consent_revoked)
        await self._port.edit_text(ev.chat, ev.message_id, t.consent_revoked)

    async def _ask_consent(self, spec: _Spec) -> None:
        draft = self._spec_draft(spec, "consent")
        self._state.add_draft(draft)
        ttl = self._options.callback_ttl_s
        yes = self._state.new_callback("consent_yes", draft.draft_id, 0, ttl)
        no = self._state.new_callback("consent_no", draft.draft_id, 0, ttl)
        t = for_language(spec.language)
        await self._port.send_keyboard(
            spec.chat,
            t.consent_question,
            [[Button(t.consent_yes, yes), Button(t.consent_no, no)]],
            reply_to=spec.reply_to,
            private=True,
        )

    async def _face_answer(self, ev: Incoming, callback_id: str, draft_id: str, k: int) -> None:
        """A face was chosen on a group photo: go on with that face (consent next)."""
        draft = self._state.draft(draft_id)
        if draft is not None and draft.user_id != ev.user_id:
            await self._port.answer_callback(callback_id, self._t(ev).not_yours)
            return
        draft = self._state.take_draft(draft_id)
        if draft is None or not 0 <= k < draft.faces:
            await self._port.answer_callback(callback_id, self._t(ev).expired, alert=True)
            return
        self._state.drop_callbacks(draft_id)
        t = for_language(draft.language or i18n.DEFAULT_LANGUAGE)
        await self._port.answer_callback(callback_id, t.face_chosen(t.face_label(k, draft.faces)))
        chat = Chat(draft.chat_id, "group" if draft.chat_kind == "group" else "private")
        try:
            await self._port.edit_keyboard(chat, ev.message_id, None)  # the strip stays
        except Exception:
            log.info("could not remove the face buttons")
        spec = self._spec_from_draft(draft, draft.prompt, draft.reply_to)
        await self._start(replace(spec, face=k))

    async def _ask_face(self, spec: _Spec, image: bytes, subject: Subject) -> None:
        """One button per face (left to right, labelled by position) and, where it can be
        made, a contact strip of the face crops numbered like the buttons."""
        count = min(len(subject.faces), MAX_FACES)
        draft = replace(self._spec_draft(spec, "face"), faces=count)
        self._state.add_draft(draft)
        t = for_language(spec.language)
        ttl = self._options.callback_ttl_s
        buttons = [
            Button(
                f"{i + 1} · {t.face_label(i, count)}",
                self._state.new_callback("face", draft.draft_id, i, ttl),
            )
            for i in range(count)
        ]
        rows = [buttons[i : i + FACES_PER_ROW] for i in range(0, count, FACES_PER_ROW)]
        strip = await asyncio.to_thread(contact_strip, image, subject.faces[:count])
        question = t.face_question(count)
        if strip is not None:
            await self._port.send_picture_keyboard(
                spec.chat, question, strip, rows, reply_to=spec.reply_to, private=True
            )
        else:
            await self._port.send_keyboard(
                spec.chat, question, rows, reply_to=spec.reply_to, private=True
            )

    async def _look(self, spec: _Spec) -> tuple[bytes, Subject | None] | None:
        """Download the photo and let the service inspect it in memory (nothing is stored).
        ``(photo, None)`` when the service cannot inspect (an older one: every photo is then
        treated as showing a person); None when the user was told why it cannot go on."""
        t = for_language(spec.language)
        try:
            image = await self._port.fetch_image(spec.image)
        except UsageError as error:
            notice = t.bad_request(str(error))
        else:
            try:
                return image, await self._client.inspect(image, spec.image.filename)
            except UsageError as error:
                notice = t.bad_request(str(error))
            except ServiceError as error:
                if error.status in {404, 405}:
                    return image, None
                notice = t.service_down
        await self._port.send_text(spec.chat, notice, reply_to=spec.reply_to, private=True)
        return None

    # -- submitting --------------------------------------------------------------------------
    async def _start(self, spec: _Spec) -> None:
        """Look at the photo first: a photo without a human face is submitted at once (no
        consent question); a group photo asks which face; a face needs consent on record
        (asked for if missing). The photo's bytes live only in this call: they are fetched
        again on submission after a question."""
        image: bytes | None = None
        if spec.parent is not None:  # the parent's photo: the service asks (403) if it must
            await self._submit(spec)
            return
        looked = await self._look(spec)
        if looked is None:
            return
        image, subject = looked
        if subject is not None and subject.kind != "face":
            await self._submit(spec, image)
            return
        if subject is not None and len(subject.faces) > 1 and spec.face is None:
            await self._ask_face(spec, image, subject)
            return
        try:
            record = await self._client.consent_get(self._requester(spec.user_id, spec.chat))
        except ServiceError:
            await self._port.send_text(
                spec.chat, for_language(spec.language).service_down, reply_to=spec.reply_to
            )
            return
        if not record.attested:
            await self._ask_consent(spec)
            return
        await self._submit(spec, image)

    async def _submit(self, spec: _Spec, photo: bytes | None = None) -> bool:
        """Submit ``spec`` (with ``photo`` when already fetched); on success show the status
        message and watch the job."""
        notice: str | None = None
        t = for_language(spec.language)
        try:
            # a child job reuses its parent's photo at the service: nothing to fetch again
            image = (
                None
                if spec.parent
                else photo
                if photo is not None
                else await self._port.fetch_image(spec.image)
            )
            submitted = await self._client.submit(
                image,
                spec.image.filename,
                JobRequest(
                    prompt=spec.prompt,
                    requester=self._requester(spec.user_id, spec.chat),
                    # recorded in the service's ledger (PUT .../consent) before any submission
                    consent_attested=False,
                    variations=spec.variations,
                    seconds=spec.seconds,
                    motion_scale=spec.motion_scale,
                    size=self._options.clip_size,
                    parent=spec.parent,
                    idempotency_key=spec.idempotency_key,
                    face=spec.face,
                ),
            )
        except ConsentRequired:
            await self._ask_consent(spec)
            return False
        except PolicyRefusal as refusal:
            notice = t.refused(str(refusal), refusal.suggestion, refusal.category)
        except RateLimited as limited:
            notice = t.rate_limited(limited.retry_after_s, "queue" in str(limited).lower())
        except UsageError as error:
            notice = t.bad_request(str(error))
        except ServiceError:
            notice = t.service_down
        if notice is not None:
            await self._port.send_text(spec.chat, notice, reply_to=spec.reply_to, private=True)
            return False
        if self._state.job(submitted.job_id) is not None:
            return True  # same idempotency key: that job is already being watched
        self._state.add_job(
            JobRecord(
                job_id=submitted.job_id,
                chat_id=spec.chat.id,
                chat_kind=spec.chat.kind,
                user_id=spec.user_id,
                reply_to=spec.reply_to,
                image_ref=spec.image.ref,
                image_name=spec.image.filename,
                prompt=spec.prompt,
                variations=spec.variations,
                seconds=spec.seconds,
                motion_scale=spec.motion_scale or 0.0,  # 0: derived by the service
                parent_job_id=spec.parent.job_id if spec.parent else "",
                adjust=spec.parent.adjust if spec.parent else "",
                created_at=time.time(),
                language=spec.language,
            )
        )
        log.info("submitted job", extra={"job_id": submitted.job_id})
        try:
            status_id = await self._port.send_text(
                spec.chat, t.queued(submitted.position), reply_to=spec.reply_to
            )
        except Exception:  # the platform failed us: deliver anyway, without a status message
            log.warning("could not send the status message", extra={"job_id": submitted.job_id})
        else:
            self._state.set_status_message(submitted.job_id, status_id)
        self._spawn(f"watch:{submitted.job_id}", self._watch(submitted.job_id))
        return True

    async def _child(
        self, ev: Incoming, callback_id: str, job: JobRecord, action: str, k: int, token: str
    ) -> None:
        adjust: Literal["reroll", "less", "more", "vary"] = (
            "less"
            if action == "less"
            else "more"
            if action == "more"
            else "vary"
            if action == "vary"
            else "reroll"
        )
        await self._port.answer_callback(callback_id, self._t(ev).started_child(adjust, k))
        chat = Chat(job.chat_id, "group" if job.chat_kind == "group" else "private")
        spec = _Spec(
            chat=chat,
            user_id=job.user_id,
            reply_to=job.reply_to,
            image=ImageRef(job.image_ref, job.image_name, "", 0),
            prompt=job.prompt,
            variations=job.variations,
            seconds=job.seconds,
            motion_scale=None,  # the service derives it from the parent's (less: 0.6x, more: 1.5x)
            parent=ParentRef(job.job_id, k or None, adjust),
            idempotency_key=f"{self._port.platform}:{token}",
            language=job.language or self._language(ev),
        )
        await self._start(spec)

    # -- progress and delivery ---------------------------------------------------------------
    async def _watch(self, job_id: str) -> None:
        """Follow one job to its end: edit the status message, then deliver.

        The service being away is waited out (with backoff, for as long as it takes); failing
        to deliver (the platform refusing) is retried ``MAX_DELIVERY_ATTEMPTS`` times.
        """
        failures = 0  # consecutive delivery failures
        backoff = 0
        shown = ""
        while failures < MAX_DELIVERY_ATTEMPTS:
            try:
                status = await self._client.status(job_id)
                shown = await self._show(job_id, status, shown)
                if not status.final:
                    async for status in self._client.events(job_id):
                        backoff = 0
                        shown = await self._show(job_id, status, shown)
                        if status.final:
                            break
                if status.final:
                    await self._finish(job_id, status)
                    return
                await asyncio.sleep(0.5)  # the stream ended early (a proxy, a restart): re-attach
                continue
            except ServiceError as error:
                if error.status in {404, 410}:  # forgotten, revoked or past retention
                    log.warning("job gone from the service", extra={"job_id": job_id})
                    await self._give_up(job_id, lambda t: t.expired)
                    return
                log.warning("service trouble while watching: %s", error, extra={"job_id": job_id})
            except Undeliverable as error:  # final: retrying cannot make the clips fit
                log.warning("clips cannot be delivered: %s", error, extra={"job_id": job_id})
                await self._give_up(job_id, partial(Texts.undeliverable, reason=str(error)))
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery step failed; retrying", extra={"job_id": job_id})
                failures += 1
            backoff += 1
            await asyncio.sleep(min(30.0, 0.25 * 2**backoff))
        log.error("giving up on delivering a job", extra={"job_id": job_id})
        await self._give_up(job_id, lambda t: t.delivery_failed)

    async def _give_up(self, job_id: str, text: Callable[[Texts], str]) -> None:
        job = self._state.job(job_id)
        if job is not None and job.phase == "running":
            self._state.set_ended(job_id)
            await self._status_or_send(job, text(self._job_texts(job)))

    async def _show(self, job_id: str, status: JobStatus, shown: str) -> str:
        job = self._state.job(job_id)
        if job is None or not job.status_message_id or status.final:
            return shown
        if status.state == "queued":
            text = self._job_texts(job).queued(status.position)
        else:  # coarser steps in groups, where Telegram allows 20 messages a minute
            steps = 4 if job.chat_kind == "group" else 10
            text = self._job_texts(job).running(int(status.progress * steps) / steps)
        if text != shown:
            try:
                await self._port.edit_text(self._chat(job), job.status_message_id, text)
            except Exception:  # progress is best effort: delivery must not wait on it
                log.info("progress edit failed", extra={"job_id": job_id})
        return text

    async def _finish(self, job_id: str, status: JobStatus) -> None:
        job = self._state.job(job_id)
        if job is None or job.phase != "running":
            return
        chat = self._chat(job)
        t = self._job_texts(job)
        if status.state != "done" or not status.variations:
            if status.state == "refused":
                text = t.refused(
                    status.error or "this request is not allowed", category=status.category
                )
            elif status.state == "cancelled":
                text = t.cancelled
            else:
                text = t.failed(status.error or "no usable take")
            await self._status_or_send(job, text)
            self._state.set_ended(job_id)
            return
        variations = sorted(status.variations, key=lambda v: v.index)
        best = min(variations, key=lambda v: v.rank or v.index).index
        delivered = self._state.deliveries(job_id)
        pending = [v for v in variations if v.index not in delivered]
        per_message = max(1, self._port.clips_per_message)
        for start in range(0, len(pending), per_message):
            batch = pending[start : start + per_message]
            clips = [
                Clip(
                    index=v.index,
                    data=await self._client.download(job_id, v.index),
                    caption=t.caption(
                        v.index, v.scores, best=v.index == best and len(variations) > 1
                    ),
                    filename=f"take-{v.index}.mp4",
                )
                for v in batch
            ]
            message_ids = await self._port.send_clips(chat, clips, final=False)
            for clip, message_id in zip(clips, message_ids, strict=True):
                self._state.add_delivery(job_id, clip.index, message_id)
        await self._status_or_send(job, t.done(len(variations)))
        group = job.chat_kind == "group"
        clip_messages = set(self._state.deliveries(job_id).values())
        keyboard_id = await self._port.send_keyboard(
            chat,
            t.keyboard_text(len(variations), group, self._options.vote_window_s),
            self._keyboard(job_id, [v.index for v in variations], best, t),
            # all takes in one message (Discord): the buttons go on it
            attach_to=clip_messages.pop() if len(clip_messages) == 1 else "",
        )
        deadline = time.time() + self._options.vote_window_s if group else 0.0
        self._state.set_delivered(job_id, keyboard_id, deadline)
        if group:
            self._spawn(f"vote:{job_id}", self._close_vote(job_id))

    def _keyboard(
        self, job_id: str, takes: Sequence[int], best: int, t: Texts
    ) -> list[list[Button]]:
        ttl = self._options.callback_ttl_s

        def button(label: str, action: str, k: int) -> Button:
            return Button(label, self._state.new_callback(action, job_id, k, ttl))

        rows = [[button(t.pick_label(k), "pick", k) for k in takes]]
        rows.append([button(t.vary_label(k), "vary", k) for k in takes])
        rows.append(
            [
                button(t.reroll, "reroll", 0),
                button(t.less, "less", best),
                button(t.more, "more", best),
            ]
        )
        return rows

    async def _status_or_send(self, job: JobRecord, text: str) -> None:
        """Show ``text`` in the job's status message (best effort: never raises)."""
        try:
            if job.status_message_id:
                await self._port.edit_text(self._chat(job), job.status_message_id, text)
            else:
                await self._port.send_text(self._chat(job), text, reply_to=job.reply_to)
        except Exception:
            log.info("status update failed", extra={"job_id": job.job_id})

    # -- picking and votes -------------------------------------------------------------------
    async def _pick(self, job: JobRecord, k: int, note: str) -> None:
        if k not in self._state.deliveries(job.job_id) or not self._state.claim_pick(job.job_id, k):
            return
        vote = self._tasks.pop(f"vote:{job.job_id}", None)
        if vote is not None and vote is not asyncio.current_task():
            vote.cancel()
        chat = self._chat(job)
        if note:
            await self._port.send_text(chat, note)
        try:
            status = await self._client.status(job.job_id)
            scores = next((v.scores for v in status.variations if v.index == k), {})
            data = await self._client.download(job.job_id, k)
        except ServiceError as error:
            log.warning("final clip unavailable: %s", error, extra={"job_id": job.job_id})
            await self._port.send_text(chat, self._job_texts(job).expired)
        else:
            caption = self._job_texts(job).caption(k, scores, final=True)
            final = Clip(k, data, caption, f"final-{k}.mp4")
            try:
                await self._port.send_clips(chat, [final], final=True)
            except Undeliverable as error:
                log.warning("final clip cannot be sent: %s", error, extra={"job_id": job.job_id})
                await self._port.send_text(chat, self._job_texts(job).undeliverable(str(error)))
        if job.keyboard_message_id:
            await self._port.edit_keyboard(chat, job.keyboard_message_id, None)
        self._state.drop_callbacks(job.job_id)

    async def _close_vote(self, job_id: str) -> None:
        job = self._state.job(job_id)
        if job is None:
            return
        await asyncio.sleep(max(0.0, job.vote_deadline - time.time()))
        job = self._state.job(job_id)
        if job is None or job.phase != "delivered":
            return
        tally = self._state.tally(job_id)
        if not tally:
            return  # nobody voted: the requester can still pick
        winner, votes = min(tally.items(), key=lambda item: (-item[1], item[0]))
        self._tasks.pop(f"vote:{job_id}", None)
        await self._pick(job, winner, note=self._job_texts(job).vote_result(winner, votes))

    # -- helpers -----------------------------------------------------------------------------
    def _spawn(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        if key in self._tasks and not self._tasks[key].done():
            work.close()  # already under way: this copy never runs
            return

        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed", key)
            finally:
                if self._tasks.get(key) is task:
                    del self._tasks[key]

        task = asyncio.get_running_loop().create_task(run(), name=f"livingphoto:{key}")
        # Cancelled before it ran (the flow closing at once): ``work`` was never awaited.
        task.add_done_callback(lambda done: work.close() if done.cancelled() else None)
        self._tasks[key] = task

    def _requester(self, user_id: str, chat: Chat) -> Requester:
        return Requester(platform=self._port.platform, user_id=user_id, chat_id=chat.id)

    @staticmethod
    def _chat(job: JobRecord) -> Chat:
        return Chat(job.chat_id, "group" if job.chat_kind == "group" else "private")

    def _image_problem(self, image: ImageRef) -> BadFile | None:
        if image.mime and image.mime.lower() not in IMAGE_TYPES:
            return "not_image"
        if image.size > self._port.max_image_bytes:
            return "too_large"
        return None

    def _bad_file_text(self, reason: BadFile, t: Texts) -> str:
        if reason == "not_image":
            return t.not_image
        return t.too_large(self._port.max_image_bytes // (1024 * 1024))

    def _language(self, ev: Incoming) -> str:
        """The user's own choice, else the platform's language of the user, else the chat's
        (or guild's) default set by an admin, else the community's locale, else English."""
        own = self._state.user_settings(ev.user_id, self._options.defaults).language
        chat = self._state.chat_language(ev.group_id or ev.chat.id)
        return i18n.choose(own, ev.language, chat, ev.chat_language)

    def _t(self, ev: Incoming) -> Texts:
        return for_language(self._language(ev))

    @staticmethod
    def _job_texts(job: JobRecord) -> Texts:
        return for_language(job.language or i18n.DEFAULT_LANGUAGE)

    def _draft(
        self,
        ev: Incoming,
        image: ImageRef,
        prompt: str,
        waiting: Literal["motion", "consent"],
        variations: int | None = None,
        seconds: float | None = None,
    ) -> Draft:
        return Draft(
            draft_id=new_id(),
            chat_id=ev.chat.id,
            chat_kind=ev.chat.kind,
            user_id=ev.user_id,
            reply_to=ev.message_id,
            image_ref=image.ref,
            image_name=image.filename,
            prompt=prompt,
            waiting=waiting,
            created_at=time.time(),
            variations=variations or 0,
            seconds=seconds or 0.0,
            language=self._language(ev),
        )

    @staticmethod
    def _spec_draft(spec: _Spec, waiting: Literal["consent", "face"]) -> Draft:
        """A request waiting for an answer; only the platform's reference to the photo is kept."""
        return Draft(
            draft_id=new_id(),
            chat_id=spec.chat.id,
            chat_kind=spec.chat.kind,
            user_id=spec.user_id,
            reply_to=spec.reply_to,
            image_ref=spec.image.ref,
            image_name=spec.image.filename,
            prompt=spec.prompt,
            waiting=waiting,
            created_at=time.time(),
            variations=spec.variations,  # this request's options, resolved: kept as asked
            seconds=spec.seconds,
            language=spec.language,
            face=-1 if spec.face is None else spec.face,
        )

    def _spec(
        self,
        chat: Chat,
        user_id: str,
        reply_to: str,
        image: ImageRef,
        prompt: str,
        variations: int | None,
        seconds: float | None,
        *,
        idempotency_key: str,
        language: str,
        face: int | None = None,
    ) -> _Spec:
        """A new job: the request's own options where given, else the user's settings."""
        settings = self._state.user_settings(user_id, self._options.defaults)
        return _Spec(
            chat=chat,
            user_id=user_id,
            reply_to=reply_to,
            image=image,
            prompt=prompt,
            variations=variations or settings.variations,
            seconds=seconds or settings.seconds,
            motion_scale=settings.motion_scale,
            idempotency_key=idempotency_key,
            language=language,
            face=face,
        )

    def _spec_from_draft(self, draft: Draft, prompt: str, reply_to: str) -> _Spec:
        """The job of a draft, with the options its request had (0: the user's settings)."""
        return self._spec(
            Chat(draft.chat_id, "group" if draft.chat_kind == "group" else "private"),
            draft.user_id,
            reply_to,
            ImageRef(draft.image_ref, draft.image_name, "", 0),
            prompt,
            draft.variations,
            draft.seconds,
            idempotency_key=f"{self._port.platform}:{draft.draft_id}",
            language=draft.language or i18n.DEFAULT_LANGUAGE,
            face=draft.face if draft.face >= 0 else None,
        )


def _options_problem(variations: int | None, seconds: float | None) -> str | None:
    """Why per-request options are unusable, in one line; None when they are fine."""
    if variations is not None and not MIN_VARIATIONS <= variations <= MAX_VARIATIONS:
        return f"variations must be {MIN_VARIATIONS}-{MAX_VARIATIONS}, not {variations}"
    if seconds is not None and not MIN_SECONDS <= seconds <= MAX_SECONDS:
        return f"seconds must be {MIN_SECONDS:g}-{MAX_SECONDS:g}, not {seconds:g}"
    return None


def reaction_pick(
    emojis: Sequence[str], in_message: Sequence[int], all_takes: Sequence[int]
) -> int | None:
    """The take a set of reactions points at: a number emoji names any take of the job; a
    like (👍 ❤️ 🔥) picks the take shown in that message when it shows exactly one."""
    for emoji in emojis:
        number = NUMBER_EMOJIS.get(emoji)
        if number is not None and number in all_takes:
            return number
    if len(in_message) == 1 and any(emoji in PICK_EMOJIS for emoji in emojis):
        return in_message[0]
    return None


def apply_setting(current: UserSettings, words: Sequence[str]) -> UserSettings | None:
    if len(words) != 2:
        return None
    name, value = words
    if name in {"variations", "takes"} and value.isdigit():
        variations = int(value)
        ok = MIN_VARIATIONS <= variations <= MAX_VARIATIONS
        return replace(current, variations=variations) if ok else None
    if name in {"seconds", "length"}:
        try:
            seconds = float(value.rstrip("s"))
        except ValueError:
            return None
        ok = MIN_SECONDS <= seconds <= MAX_SECONDS
        return replace(current, seconds=seconds) if ok else None
    if name in {"language", "lang"}:
        if value in {"auto", "default"}:
            return replace(current, language="")
        language = i18n.normalize(value)
        return replace(current, language=language) if language is not None else None
    if name in {"motion", "strength"} and value in {"subtle", "normal", "strong"}:
        motion: Literal["subtle", "normal", "strong"] = (
            "subtle" if value == "subtle" else "strong" if value == "strong" else "normal"
        )
        return replace(current, motion=motion)
    return None


__all__ = [
    "BadFile",
    "Button",
    "Chat",
    "ChatKind",
    "ChatPort",
    "Clip",
    "ConsentAction",
    "Flow",
    "FlowOptions",
    "ImageRef",
    "Incoming",
    "Rows",
    "Undeliverable",
]
