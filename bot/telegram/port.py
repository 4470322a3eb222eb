"""``ChatPort`` for Telegram: the flow's way of talking back, through python-telegram-bot's ``Bot``.

429s are waited out by the application's ``AIORateLimiter``; "message is not modified" edits are
ignored; a photo that can no longer be downloaded becomes a one-line ``UsageError``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, TelegramError

from bot.flow import Chat, Clip, ImageRef, Rows
from livingphoto.errors import UsageError

log = logging.getLogger(__name__)

DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024  # Bot API getFile limit
CAPTION_LIMIT = 1024  # characters of a media caption


class TelegramPort:
    """Implements ``bot.flow.ChatPort`` with Bot API calls."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    @property
    def platform(self) -> str:
        return "telegram"

    @property
    def max_image_bytes(self) -> int:
        return DOWNLOAD_LIMIT_BYTES

    @property
    def clips_per_message(self) -> int:
        return 1  # sendAnimation takes one clip; media groups take no animations

    async def send_text(
        self, chat: Chat, text: str, *, reply_to: str = "", private: bool = False
    ) -> str:
        message = await self._bot.send_message(
            chat_id=int(chat.id), text=text, reply_parameters=_reply(reply_to)
        )
        return str(message.message_id)

    async def edit_text(self, chat: Chat, message_id: str, text: str) -> None:
        try:
            await self._bot.edit_message_text(
                text=text, chat_id=int(chat.id), message_id=int(message_id)
            )
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise

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
        # ``attach_to`` is not used: each take is its own animation message, so the keyboard
        # (and its text) is a message of its own below them.
        message = await self._bot.send_message(
            chat_id=int(chat.id),
            text=text,
            reply_markup=_markup(rows),
            reply_parameters=_reply(reply_to),
        )
        return str(message.message_id)

    async def edit_keyboard(self, chat: Chat, message_id: str, rows: Rows | None) -> None:
        try:
            await self._bot.edit_message_reply_markup(
                chat_id=int(chat.id),
                message_id=int(message_id),
                reply_markup=_markup(rows) if rows else None,
            )
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise

    async def send_clips(self, chat: Chat, clips: Sequence[Clip], *, final: bool) -> list[str]:
        ids: list[str] = []
        for clip in clips:
            message = await self._bot.send_animation(
                chat_id=int(chat.id),
                animation=clip.data,
                filename=clip.filename,
                caption=clip.caption,
            )
            ids.append(str(message.message_id))
        return ids

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
        """``sendPhoto`` with ``text`` as caption and the buttons under it."""
        message = await self._bot.send_photo(
            chat_id=int(chat.id),
            photo=picture,
            filename="faces.png",
            caption=text[:CAPTION_LIMIT],
            reply_markup=_markup(rows),
            reply_parameters=_reply(reply_to),
        )
        return str(message.message_id)

    async def answer_callback(
        self, callback_id: str, text: str = "", *, alert: bool = False
    ) -> None:
        try:
            await self._bot.answer_callback_query(
                callback_query_id=callback_id, text=text or None, show_alert=alert
            )
        except BadRequest as error:  # the query is too old to answer: nothing left to do
            log.info("callback query not answered: %s", error)

    async def fetch_image(self, image: ImageRef) -> bytes:
        try:
            file = await self._bot.get_file(image.ref)
            if file.file_size is not None and file.file_size > DOWNLOAD_LIMIT_BYTES:
                raise UsageError("the photo is larger than Telegram lets bots download (20 MB)")
            return bytes(await file.download_as_bytearray())
        except TelegramError as error:
            log.info("photo download failed: %s", error)
            raise UsageError(
                "the photo can no longer be downloaded, please send it again"
            ) from None


def _markup(rows: Rows | None) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.token) for b in row] for row in rows]
    )


def _reply(reply_to: str) -> ReplyParameters | None:
    if not reply_to.isdigit():
        return None
    return ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
