"""``DiscordPort``: the flow's ``ChatPort`` on discord.py.

How the flow's plain messages map onto Discord:

- Every interaction is deferred on arrival (slash commands: an ephemeral "thinking" response;
  buttons: a silent deferred update) and remembered here for 14 minutes, under the id
  ``"i<interaction id>"`` that the skin puts in ``Incoming.message_id`` and as ``callback_id``.
- A message answering a live interaction goes through it, seen only by the requester: the first
  one resolves the deferred response (the original response, later edited for progress), the
  next ones are ephemeral follow-ups. Ephemeral messages can only be edited through their
  interaction, so their ids are remembered with it.
- Anything else (photo messages in DMs or mentions, vote results, an expired interaction) is a
  normal channel message, replying to the user's message where there is one.
- Clips: one message holding every take (MP4s re-encoded to fit the channel's upload limit) and
  an animated WebP preview (MP4 does not autoplay), with number reactions 1️⃣…N added by the bot.
  The flow then attaches the take buttons to that same message (``send_keyboard(attach_to=…)``).
- Clips that cannot be made small enough for the channel raise ``ClipTooLarge`` (an
  ``Undeliverable``): the flow tells the user once instead of retrying.

Usage::

    port = DiscordPort(bot, http)
    async with Flow(port, client, state, options) as flow: ...
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.discord.buttons import build_view, disabled_view
from bot.discord.media import ClipTooLarge, fit_clips, make_preview
from bot.flow import Chat, Clip, ImageRef, Rows
from livingphoto.errors import UsageError

log = logging.getLogger(__name__)

INTERACTION_TTL_S = 14 * 60.0  # Discord keeps an interaction token for 15 minutes
DM_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_IMAGE_BYTES = 25 * 1024 * 1024
MAX_ATTACHMENTS = 10
UPLOAD_ATTEMPTS = 10  # after a 413: drop the preview, then shrink the budget by SHRINK_STEP
SHRINK_STEP = 0.75
KEYCAPS = tuple(f"{n}\ufe0f\u20e3" for n in range(1, 10))
MAX_CONTENT = 2000
NO_MENTIONS = discord.AllowedMentions.none()


@dataclass
class _Live:
    """An interaction that can still be answered (mutable: whether its original was used)."""

    interaction: discord.Interaction[Any]
    since: float
    original_used: bool


def _text(content: str) -> str:
    return content if len(content) <= MAX_CONTENT else content[: MAX_CONTENT - 1] + "…"


def _too_large(error: discord.HTTPException) -> bool:
    return error.status == 413 or error.code == 40005


class DiscordPort:
    """Implements ``bot.flow.ChatPort`` for one discord.py client."""

    platform = "discord"
    max_image_bytes = MAX_IMAGE_BYTES
    clips_per_message = MAX_ATTACHMENTS - 1  # one attachment slot for the preview

    def __init__(self, client: discord.Client, http: aiohttp.ClientSession) -> None:
        self._client = client
        self._http = http
        self._live: dict[str, _Live] = {}
        # ephemeral message id -> (interaction key, whether it is that interaction's original)
        self._webhook_messages: dict[str, tuple[str, bool]] = {}
        self._upload_limits: dict[str, int] = {}  # channel id -> limit told by interactions

    # -- interactions ------------------------------------------------------------------------
    def remember(self, interaction: discord.Interaction[Any], *, original_used: bool) -> str:
        """Keep a (deferred) interaction for answering; returns its key ``"i<id>"``."""
        self._prune()
        key = f"i{interaction.id}"
        self._live[key] = _Live(interaction, time.monotonic(), original_used)
        if interaction.channel_id is not None:
            self._upload_limits[str(interaction.channel_id)] = interaction.filesize_limit
        return key

    def _prune(self) -> None:
        now = time.monotonic()
        for key in [k for k, live in self._live.items() if now - live.since > INTERACTION_TTL_S]:
            del self._live[key]
        self._webhook_messages = {
            m: v for m, v in self._webhook_messages.items() if v[0] in self._live
        }

    def _get_live(self, key: str) -> _Live | None:
        self._prune()
        return self._live.get(key) if key.startswith("i") else None

    async def _respond(
        self,
        live: _Live,
        content: str,
        view: discord.ui.View | None,
        file: discord.File | None = None,
    ) -> str:
        """Answer through a live interaction, visible to the requester only."""
        interaction = live.interaction
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        message: discord.Message
        original = not live.original_used
        if original:
            live.original_used = True
            if file is not None:
                extra["attachments"] = [file]
            message = await interaction.edit_original_response(content=_text(content), **extra)
        else:
            if file is not None:
                extra["file"] = file
            message = await interaction.followup.send(
                _text(content), ephemeral=True, wait=True, allowed_mentions=NO_MENTIONS, **extra
            )
        self._webhook_messages[str(message.id)] = (f"i{interaction.id}", original)
        return str(message.id)

    async def _edit(self, chat: Chat, message_id: str, **fields: Any) -> None:
        """Edit a message: through its interaction when ephemeral, else in the channel."""
        key, original = self._webhook_messages.get(message_id, ("", False))
        live = self._get_live(key) if key else None
        try:
            if live is not None:
                if original:
                    await live.interaction.edit_original_response(**fields)
                else:
                    await live.interaction.followup.edit_message(int(message_id), **fields)
                return
            if key:
                log.debug("ephemeral message %s can no longer be edited", message_id)
                return
            await self._channel(chat).get_partial_message(int(message_id)).edit(**fields)
        except discord.NotFound:
            log.info("message %s to edit is gone", message_id)
        except discord.HTTPException as error:
            # Progress edits are best effort: a message we may no longer edit stops nothing.
            log.warning("could not edit message %s: %s", message_id, error.text or error.status)

    def _channel(self, chat: Chat) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(int(chat.id))

    def _reference(self, chat: Chat, reply_to: str) -> discord.MessageReference | None:
        if not reply_to.isdigit():
            return None
        return discord.MessageReference(
            message_id=int(reply_to), channel_id=int(chat.id), fail_if_not_exists=False
        )

    # -- ChatPort ----------------------------------------------------------------------------
    async def send_text(
        self, chat: Chat, text: str, *, reply_to: str = "", private: bool = False
    ) -> str:
        return await self._send(chat, text, None, reply_to)

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
        if attach_to.isdigit():
            # The take buttons go on the message holding the takes: one message per job.
            message = self._channel(chat).get_partial_message(int(attach_to))
            current = await message.fetch()
            await message.edit(
                content=_text(f"{current.content}\n\n{text}".strip()), view=build_view(rows)
            )
            return attach_to
        return await self._send(chat, text, build_view(rows), reply_to)

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
        """The picture attached (``faces.png``) to a message with ``text`` and the buttons."""
        file = discord.File(io.BytesIO(picture), filename="faces.png")
        return await self._send(chat, text, build_view(rows), reply_to, file)

    async def _send(
        self,
        chat: Chat,
        text: str,
        view: discord.ui.View | None,
        reply_to: str,
        file: discord.File | None = None,
    ) -> str:
        live = self._get_live(reply_to)
        if live is not None:
            return await self._respond(live, text, view, file)
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        if file is not None:
            extra["file"] = file
        message = await self._channel(chat).send(
            _text(text),
            reference=self._reference(chat, reply_to),  # type: ignore[arg-type]
            allowed_mentions=NO_MENTIONS,
            **extra,
        )
        return str(message.id)

    async def edit_text(self, chat: Chat, message_id: str, text: str) -> None:
        # Like Telegram's editMessageText, the new text replaces any buttons.
        await self._edit(chat, message_id, content=_text(text), view=None)

    async def edit_keyboard(self, chat: Chat, message_id: str, rows: Rows | None) -> None:
        if rows is not None:
            await self._edit(chat, message_id, view=build_view(rows))
            return
        if message_id in self._webhook_messages:
            await self._edit(chat, message_id, view=None)
            return
        # A channel message: keep its buttons visible, disabled.
        try:
            message = await self._channel(chat).fetch_message(int(message_id))
        except discord.NotFound:
            return
        await message.edit(view=disabled_view(message.components))

    async def send_clips(self, chat: Chat, clips: Sequence[Clip], *, final: bool) -> list[str]:
        if not clips:
            return []
        limit = self._upload_limit(chat)
        content = _text("\n".join(clip.caption for clip in clips))
        with_preview = True
        for _ in range(UPLOAD_ATTEMPTS):
            files, sent, previewed = await self._files(clips, limit, with_preview)
            try:
                message = await self._channel(chat).send(
                    content, files=files, allowed_mentions=NO_MENTIONS
                )
            except discord.HTTPException as error:
                if not _too_large(error):
                    raise
                # The real limit is below what was sent: drop the preview, then shrink the clips.
                if previewed:
                    with_preview = False
                else:
                    limit = int(min(limit, sent) * SHRINK_STEP)
                self._upload_limits[chat.id] = min(limit, sent)
                log.info("upload refused as too large (%d bytes); trying smaller", sent)
                continue
            break
        else:
            raise ClipTooLarge("the clips cannot be made small enough for this channel")
        if not final:
            for clip in clips:
                if 1 <= clip.index <= len(KEYCAPS):
                    await message.add_reaction(KEYCAPS[clip.index - 1])
        return [str(message.id)] * len(clips)

    async def _files(
        self, clips: Sequence[Clip], limit: int, with_preview: bool
    ) -> tuple[list[discord.File], int, bool]:
        """The clips fitted under ``limit`` (plus the preview if it fits), their total size and
        whether the preview is among them."""
        fitted = await fit_clips([clip.data for clip in clips], limit)
        files = [
            discord.File(io.BytesIO(data), filename=clip.filename, description=clip.caption[:1024])
            for clip, data in zip(clips, fitted, strict=True)
        ]
        size = sum(len(d) for d in fitted)
        preview = await make_preview(fitted, limit - size) if with_preview else None
        if preview is not None:
            name = (
                "preview.webp"
                if len(clips) == 1
                else "takes-" + "-".join(str(c.index) for c in clips) + ".webp"
            )
            files.append(discord.File(io.BytesIO(preview), filename=name))
        return files, size + len(preview or b""), preview is not None

    def _upload_limit(self, chat: Chat) -> int:
        known = self._upload_limits.get(chat.id)
        if known is not None:
            return known
        channel = self._client.get_channel(int(chat.id))
        guild = getattr(channel, "guild", None)
        return guild.filesize_limit if isinstance(guild, discord.Guild) else DM_UPLOAD_LIMIT

    async def answer_callback(
        self, callback_id: str, text: str = "", *, alert: bool = False
    ) -> None:
        live = self._get_live(callback_id)
        if live is None or not text:
            return  # already acknowledged by the deferred update
        await live.interaction.followup.send(
            _text(("⚠️ " if alert else "") + text), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def fetch_image(self, image: ImageRef) -> bytes:
        try:
            async with self._http.get(
                image.ref, timeout=aiohttp.ClientTimeout(total=60)
            ) as response:
                if response.status != 200:
                    raise UsageError("the photo can no longer be downloaded; send it again")
                # ``read(n)`` returns what has arrived (up to n): read to the end or the limit
                data = b""
                while len(data) <= self.max_image_bytes:
                    chunk = await response.content.read(self.max_image_bytes + 1 - len(data))
                    if not chunk:
                        break
                    data += chunk
        except (aiohttp.ClientError, TimeoutError):
            raise UsageError("the photo could not be downloaded; send it again") from None
        if len(data) > self.max_image_bytes:
            raise UsageError("the photo is too large")
        return data
