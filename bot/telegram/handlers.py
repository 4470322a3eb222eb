"""Telegram update handlers: small typed functions that turn updates into ``Flow`` events.

All conversation logic is in ``bot.flow``; a handler only reads the update (chat, user and their
``language_code``, photo, caption, callback data, reactions) and calls the matching ``flow.on_*``.
``install`` wires them. Whether a user is an admin (for ``/settings chat language``) is asked of
Telegram (``getChatMember``) only for that command; in a private chat the user always is.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from telegram import Message, ReactionTypeEmoji, Update
from telegram import User as TelegramUser
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot.flow import Chat, Flow, ImageRef, Incoming

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE


class TelegramHandlers:
    """The handlers of one running bot, bound to its flow."""

    def __init__(self, flow: Flow) -> None:
        self._flow = flow

    async def help(self, update: Update, context: Context) -> None:
        if (ev := _incoming(update)) is not None:
            await self._flow.on_help(ev)

    async def animate(self, update: Update, context: Context) -> None:
        """``/animate <motion>`` as text, usually as a reply to a photo."""
        ev, message = _incoming(update), update.effective_message
        if ev is None or message is None:
            return
        reply = message.reply_to_message
        image = _image_of(reply) if reply is not None else None
        await self._flow.on_animate(ev, image, " ".join(context.args or ()))

    async def media(self, update: Update, context: Context) -> None:
        """A photo or a file, with ``/animate <motion>`` as caption or alone."""
        ev, message = _incoming(update), update.effective_message
        if ev is None or message is None:
            return
        image = _image_of(message)
        if image is None:
            return
        prompt = _command_args(message.caption or "", "animate", context.bot.username)
        if prompt is not None:
            await self._flow.on_animate(ev, image, prompt)
        else:
            await self._flow.on_photo(ev, image)

    async def text(self, update: Update, context: Context) -> None:
        ev, message = _incoming(update), update.effective_message
        if ev is not None and message is not None and message.text:
            await self._flow.on_text(ev, message.text)

    async def consent(self, update: Update, context: Context) -> None:
        if (ev := _incoming(update)) is not None:
            revoke = [a.lower() for a in context.args or ()] == ["revoke"]
            await self._flow.on_consent(ev, "revoke" if revoke else "show")

    async def forget(self, update: Update, context: Context) -> None:
        if (ev := _incoming(update)) is not None:
            await self._flow.on_forget(ev)

    async def settings(self, update: Update, context: Context) -> None:
        if (ev := _incoming(update)) is None:
            return
        args = " ".join(context.args or ())
        if ev.chat.kind == "group" and args.lower().split()[:1] == ["chat"]:
            ev = replace(ev, admin=await _is_admin(context, int(ev.chat.id), int(ev.user_id)))
        await self._flow.on_settings(ev, args)

    async def button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message
        user_id = str(query.from_user.id)
        chat = _chat(message.chat.id, message.chat.type) if message is not None else None
        ev = Incoming(
            event_id=f"u{update.update_id}",
            chat=chat or Chat(user_id, "private"),
            user_id=user_id,
            message_id=str(message.message_id) if message is not None else "",
            language=_language(query.from_user),
        )
        data = query.data if isinstance(query.data, str) else ""
        await self._flow.on_button(ev, query.id, data)

    async def reaction(self, update: Update, context: Context) -> None:
        changed = update.message_reaction
        if changed is None or changed.user is None:
            return  # anonymous reactions cannot be attributed to a voter
        chat = _chat(changed.chat.id, changed.chat.type)
        if chat is None:
            return
        emojis = [r.emoji for r in changed.new_reaction if isinstance(r, ReactionTypeEmoji)]
        ev = Incoming(
            f"u{update.update_id}", chat, str(changed.user.id), language=_language(changed.user)
        )
        await self._flow.on_reaction(ev, str(changed.message_id), emojis)

    async def error(self, update: object, context: Context) -> None:
        log.error("update handling failed: %s", context.error, exc_info=context.error)


def install(application: Application[Any, Any, Any, Any, Any, Any], flow: Flow) -> None:
    """Wire every handler, in one place."""
    handlers = TelegramHandlers(flow)
    new = filters.UpdateType.MESSAGE
    application.add_handler(CommandHandler(["start", "help"], handlers.help, filters=new))
    application.add_handler(CommandHandler("animate", handlers.animate, filters=new))
    application.add_handler(CommandHandler("consent", handlers.consent, filters=new))
    application.add_handler(CommandHandler("forget", handlers.forget, filters=new))
    application.add_handler(CommandHandler("settings", handlers.settings, filters=new))
    application.add_handler(
        MessageHandler(new & (filters.PHOTO | filters.Document.ALL), handlers.media)
    )
    application.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, handlers.text))
    application.add_handler(CallbackQueryHandler(handlers.button))
    application.add_handler(MessageReactionHandler(handlers.reaction))
    application.add_error_handler(handlers.error)


def _incoming(update: Update) -> Incoming | None:
    message, user = update.effective_message, update.effective_user
    if message is None or user is None:
        return None
    chat = _chat(message.chat.id, message.chat.type)
    if chat is None:
        return None
    return Incoming(
        event_id=f"u{update.update_id}",
        chat=chat,
        user_id=str(user.id),
        message_id=str(message.message_id),
        language=_language(user),
        admin=chat.kind == "private",
    )


def _language(user: TelegramUser) -> str:
    """The user's IETF language tag as their Telegram app reports it ("" when not shared)."""
    return user.language_code or ""


async def _is_admin(context: Context, chat_id: int, user_id: int) -> bool:
    try:
        member = await context.bot.get_chat_member(chat_id, user_id)
    except TelegramError as error:
        log.info("could not check chat admin: %s", error)
        return False
    return member.status in {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}


def _chat(chat_id: int, chat_type: str) -> Chat | None:
    if chat_type == ChatType.PRIVATE:
        return Chat(str(chat_id), "private")
    if chat_type in {ChatType.GROUP, ChatType.SUPERGROUP}:
        return Chat(str(chat_id), "group")
    return None  # channels are not supported


def _image_of(message: Message) -> ImageRef | None:
    """The photo of a message: a compressed photo or a file (document) of any type."""
    if message.photo:
        largest = message.photo[-1]
        return ImageRef(largest.file_id, "photo.jpg", "image/jpeg", largest.file_size or 0)
    document = message.document
    if document is not None:
        return ImageRef(
            document.file_id,
            document.file_name or "photo",
            (document.mime_type or "application/octet-stream").lower(),
            document.file_size or 0,
        )
    return None


def _command_args(text: str, command: str, bot_username: str | None) -> str | None:
    """``"/animate@bot blink"`` -> ``"blink"``; None when ``text`` is not that command."""
    head, _, rest = text.strip().partition(" ")
    name, _, target = head.partition("@")
    if name.lower() != f"/{command}":
        return None
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return rest.strip()
