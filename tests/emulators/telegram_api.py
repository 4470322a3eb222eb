"""A local emulator of the Telegram Bot API, for running the real python-telegram-bot app in tests.

It answers the methods a bot built on python-telegram-bot 22 calls (getMe, deleteWebhook,
getUpdates long poll with offset semantics, getFile and the file download route, sendMessage,
sendAnimation, sendPhoto, sendDocument, editMessageText, editMessageReplyMarkup,
answerCallbackQuery, setMyCommands, setMessageReaction) and accepts empty, form-encoded (nested
objects as JSON strings) and multipart POSTs. Every request is recorded as a :class:`Call`.
Tests inject updates (photos, documents, texts, button presses, reactions), deliver one twice,
and make the next call of a method fail with 429 ``retry_after``.

Usage::

    async with TelegramEmulator() as tg:
        # TELEGRAM_API_BASE_URL=tg.api_base_url, TELEGRAM_FILE_BASE_URL=tg.file_base_url
        tg.send_photo(tg.alice, tg.private_chat(tg.alice), png, caption="/animate blink")
        call = await tg.wait_for("sendAnimation")
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

JSON = dict[str, Any]
BOT_ID = 7000001
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "reply_parameters",
        "commands",
        "allowed_updates",
        "reaction",
        "entities",
        "caption_entities",
        "link_preview_options",
        "scope",
    }
)


@dataclass(frozen=True)
class User:
    id: int
    first_name: str
    language_code: str = ""  # the IETF tag the user's app reports ("es", "de", "pt-br"); "" none

    def payload(self) -> JSON:
        body: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            body["language_code"] = self.language_code
        return body


@dataclass(frozen=True)
class ChatRef:
    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str = ""

    def payload(self) -> JSON:
        body: JSON = {"id": self.id, "type": self.type}
        if self.type == "private":
            body["first_name"] = self.title or "user"
        else:
            body["title"] = self.title or "group"
        return body


@dataclass(frozen=True)
class Call:
    """One request the bot made."""

    method: str
    params: JSON
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 200  # what the emulator answered
    result: Any = None  # the ``result`` it answered (a Message for send* methods)
    at: float = 0.0

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    def buttons(self) -> dict[str, str]:
        """label -> callback_data of the inline keyboard this call sent."""
        rows = (self.params.get("reply_markup") or {}).get("inline_keyboard", [])
        return {b["text"]: b.get("callback_data", "") for row in rows for b in row}

    def chat_id(self) -> int:
        return int(self.params.get("chat_id", 0))


class TelegramEmulator:
    """The emulator; start with ``async with`` (binds 127.0.0.1 on a free port)."""

    def __init__(self, token: str = "123456:TEST-token_for-emulator") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], JSON] = {}  # (chat id, message id) -> message
        self.answered: dict[str, int] = {}  # callback query id -> times answered
        self.polls_started = 0  # getUpdates requests received (recorded when they return)
        self._closing = False
        self.alice = User(1001, "Alice")
        self.bob = User(1002, "Bob")
        self.carol = User(1003, "Carol")
        self.group = ChatRef(-100200, "supergroup", "Family")
        self.admins: set[int] = {self.alice.id}  # administrators of ``group`` (getChatMember)
        self._files: dict[str, tuple[str, bytes]] = {}  # file_id -> (path, data)
        self._updates: list[JSON] = []
        self._confirmed = 0  # highest offset the bot confirmed
        self._update_ids = itertools.count(5001)
        self._message_ids = itertools.count(1)
        self._ids = itertools.count(1)
        self._failures: dict[str, list[int]] = {}
        self._changed = asyncio.Event()  # replaced after each change: wakes every waiter
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> TelegramEmulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing = True  # pending long polls return at once
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test controls -----------------------------------------------------------------------
    def private_chat(self, user: User) -> ChatRef:
        return ChatRef(user.id, "private", user.first_name)

    def add_file(self, data: bytes, suffix: str = "jpg") -> str:
        n = next(self._ids)
        file_id = f"FILE{n:04d}"
        self._files[file_id] = (f"files/file_{n}.{suffix}", data)
        return file_id

    def fail_next(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer 429 with ``retry_after``."""
        self._failures.setdefault(method, []).extend([retry_after] * times)

    def inject(self, update: JSON) -> JSON:
        """Queue an update (its ``update_id`` is assigned if missing)."""
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._notify()
        return update

    def redeliver(self, update: JSON) -> None:
        """Deliver ``update`` once more, as Telegram does when an offset was not confirmed."""
        self._updates.append({**update, "_force": True})
        self._notify()

    def send_text(self, user: User, chat: ChatRef, text: str, reply_to: JSON | None = None) -> JSON:
        message = self._user_message(user, chat, {"text": text}, reply_to)
        if text.startswith("/"):
            message["entities"] = [_command_entity(text)]
        return self.inject({"message": message})

    def send_photo(
        self,
        user: User,
        chat: ChatRef,
        data: bytes,
        caption: str | None = None,
        reply_to: JSON | None = None,
        file_size: int | None = None,
    ) -> JSON:
        file_id = self.add_file(data)
        size = len(data) if file_size is None else file_size
        photo = [
            {"file_id": file_id + "s", "file_unique_id": "u" + file_id + "s", "width": 90,
             "height": 90, "file_size": min(size, 1000)},
            {"file_id": file_id, "file_unique_id": "u" + file_id, "width": 640, "height": 640,
             "file_size": size},
        ]  # fmt: skip
        self._files[file_id + "s"] = self._files[file_id]
        extra: JSON = {"photo": photo}
        if caption is not None:
            extra["caption"] = caption
            if caption.startswith("/"):
                extra["caption_entities"] = [_command_entity(caption)]
        return self.inject({"message": self._user_message(user, chat, extra, reply_to)})

    def send_document(
        self,
        user: User,
        chat: ChatRef,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> JSON:
        file_id = self.add_file(data, file_name.rsplit(".", 1)[-1])
        document = {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data) if file_size is None else file_size,
        }
        extra: JSON = {"document": document}
        if caption is not None:
            extra["caption"] = caption
            if caption.startswith("/"):
                extra["caption_entities"] = [_command_entity(caption)]
        return self.inject({"message": self._user_message(user, chat, extra, None)})

    def press(self, user: User, message: JSON, data: str) -> JSON:
        """Press an inline button (``data`` is its ``callback_data``) on a bot message."""
        query = {
            "id": f"cq{next(self._ids)}",
            "from": user.payload(),
            "chat_instance": "ci1",
            "message": message,
            "data": data,
        }
        return self.inject({"callback_query": query})

    def react(self, user: User, chat: ChatRef, message_id: int, emojis: list[str]) -> JSON:
        reaction = {
            "chat": chat.payload(),
            "message_id": message_id,
            "user": user.payload(),
            "date": int(time.time()),
            "old_reaction": [],
            "new_reaction": [{"type": "emoji", "emoji": e} for e in emojis],
        }
        return self.inject({"message_reaction": reaction})

    # -- assertions --------------------------------------------------------------------------
    def calls_of(self, method: str, chat: ChatRef | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and c.status == 200 and (chat is None or c.chat_id() == chat.id)
        ]

    def texts_to(self, chat: ChatRef) -> list[str]:
        """Every text the bot sent or edited into ``chat``, in order."""
        return [
            str(c.params.get("text", ""))
            for c in self.calls
            if c.method in {"sendMessage", "editMessageText"}
            and c.status == 200
            and c.chat_id() == chat.id
        ]

    def keyboard_of(self, message: JSON) -> list[tuple[str, str]]:
        """(label, callback_data) of every button of a bot message, as it is now."""
        current = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        rows = current.get("reply_markup", {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]

    def bot_messages(self, chat: ChatRef) -> Iterator[JSON]:
        for (chat_id, _), message in sorted(self.messages.items()):
            if chat_id == chat.id and message.get("from", {}).get("id") == BOT_ID:
                yield message

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        where: Callable[[Call], bool] | None = None,
        limit_s: float = 60.0,
    ) -> list[Call]:
        """Wait until at least ``count`` successful calls of ``method`` (matching ``where``)."""

        def matching() -> list[Call]:
            return [
                c
                for c in self.calls
                if c.method == method and c.status == 200 and (where is None or where(c))
            ]

        await self.wait_until(lambda: len(matching()) >= count, limit_s)
        return matching()

    async def wait_until(self, predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
        async with asyncio.timeout(limit_s):
            while not predicate():
                await self._changed.wait()

    # -- HTTP --------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        if request.match_info["token"] != self.token:
            return self._record(method, params, files, 401, _error(401, "Unauthorized"))
        pending = self._failures.get(method)
        if pending:
            retry_after = pending.pop(0)
            body = _error(429, f"Too Many Requests: retry after {retry_after}")
            body["parameters"] = {"retry_after": retry_after}
            return self._record(method, params, files, 429, body)
        if method == "getUpdates":
            return await self._get_updates(params)
        handler = self._handlers().get(method)
        if handler is None:
            return self._record(method, params, files, 404, _error(404, "Not Found"))
        try:
            result = handler(params, files)
        except _ApiError as error:
            return self._record(method, params, files, error.code, _error(error.code, error.text))
        return self._record(method, params, files, 200, {"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored_path, data in self._files.values():
            if stored_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404)

    def _record(
        self, method: str, params: JSON, files: dict[str, bytes], status: int, body: JSON
    ) -> web.Response:
        result = body.get("result")
        self.calls.append(Call(method, params, files, status, result, time.monotonic()))
        self._notify()
        return web.json_response(body, status=status)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _get_updates(self, params: JSON) -> web.Response:
        self.polls_started += 1
        self._notify()
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 10.0)
        if offset:
            self._confirmed = max(self._confirmed, offset)

        def ready() -> list[JSON]:
            return [
                u for u in self._updates if u.get("_force") or u["update_id"] >= self._confirmed
            ]

        with contextlib.suppress(TimeoutError):
            await self.wait_until(lambda: self._closing or bool(ready()), timeout)
        batch = ready()[:100]
        for update in batch:
            if update.get("_force"):
                self._updates.remove(update)
        self._updates = [u for u in self._updates if u["update_id"] >= self._confirmed]
        result = [{k: v for k, v in u.items() if k != "_force"} for u in batch]
        return self._record("getUpdates", params, {}, 200, {"ok": True, "result": result})

    def _handlers(self) -> dict[str, Callable[[JSON, dict[str, bytes]], Any]]:
        return {
            "getMe": lambda p, f: {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "LivingPhoto",
                "username": "livingphoto_bot",
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
            "deleteWebhook": lambda p, f: True,
            "setMyCommands": lambda p, f: True,
            "setMessageReaction": lambda p, f: True,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "sendAnimation": lambda p, f: self._send_media(p, f, "animation"),
            "sendPhoto": lambda p, f: self._send_media(p, f, "photo"),
            "sendDocument": lambda p, f: self._send_media(p, f, "document"),
            "editMessageText": self._edit_text,
            "editMessageReplyMarkup": self._edit_markup,
            "answerCallbackQuery": self._answer_callback,
            "getChatMember": self._chat_member,
        }

    def _chat_member(self, params: JSON, files: dict[str, bytes]) -> JSON:
        self._chat(params)  # the chat must exist
        user_id = int(params.get("user_id", 0))
        user: JSON = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if user_id in self.admins:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    def _get_file(self, params: JSON, files: dict[str, bytes]) -> JSON:
        file_id = str(params.get("file_id", ""))
        if file_id not in self._files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        path, data = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": len(data),
            "file_path": path,
        }

    def _chat(self, params: JSON) -> JSON:
        chat_id = int(params.get("chat_id", 0))
        if chat_id == self.group.id:
            return self.group.payload()
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "user"}
        raise _ApiError(400, "Bad Request: chat not found")

    def _bot_message(self, params: JSON, extra: JSON) -> JSON:
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(params),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "LivingPhoto"},
            **extra,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(message["chat"]["id"], message["message_id"])] = message
        return message

    def _send_message(self, params: JSON, files: dict[str, bytes]) -> JSON:
        text = str(params.get("text", ""))
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._bot_message(params, {"text": text})

    def _send_media(self, params: JSON, files: dict[str, bytes], kind: str) -> JSON:
        data = files.get(kind)
        if data is None and not params.get(kind):
            raise _ApiError(400, f"Bad Request: there is no {kind} in the request")
        file_id = self.add_file(data or b"", "mp4") if data is not None else str(params[kind])
        media: JSON = {"file_id": file_id, "file_unique_id": "u" + file_id}
        if kind == "animation":
            media |= {"width": 512, "height": 512, "duration": 3, "mime_type": "video/mp4"}
        value: Any = [media | {"width": 512, "height": 512}] if kind == "photo" else media
        extra: JSON = {kind: value}
        if params.get("caption"):
            extra["caption"] = str(params["caption"])
        return self._bot_message(params, extra)

    def _stored(self, params: JSON) -> JSON:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    def _edit_text(self, params: JSON, files: dict[str, bytes]) -> JSON:
        message = self._stored(params)
        text = str(params.get("text", ""))
        markup = params.get("reply_markup")
        if message.get("text") == text and markup == message.get("reply_markup"):
            raise _ApiError(400, "Bad Request: message is not modified")
        message["text"] = text
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _edit_markup(self, params: JSON, files: dict[str, bytes]) -> JSON:
        message = self._stored(params)
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise _ApiError(400, "Bad Request: message is not modified")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _answer_callback(self, params: JSON, files: dict[str, bytes]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id in self.answered:
            self.answered[query_id] += 1
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired")
        self.answered[query_id] = 1
        return True

    def _user_message(self, user: User, chat: ChatRef, extra: JSON, reply_to: JSON | None) -> JSON:
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat.payload(),
            "from": user.payload(),
            **extra,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        self.messages[(chat.id, message["message_id"])] = message
        return message


class _ApiError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


def _error(code: int, description: str) -> JSON:
    return {"ok": False, "error_code": code, "description": description}


def _command_entity(text: str) -> JSON:
    return {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}


async def _read_params(request: web.Request) -> tuple[JSON, dict[str, bytes]]:
    """Parameters of an empty, JSON, form-encoded or multipart POST (or a GET query)."""
    params: JSON = dict(request.query)
    files: dict[str, bytes] = {}
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue  # nested multipart: python-telegram-bot sends none
            data = await part.read()
            if part.filename:
                files[part.name] = bytes(data)
            else:
                params[part.name] = bytes(data).decode("utf-8")
    elif request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.can_read_body:
        params.update(dict(await request.post()))
    for name in _JSON_FIELDS & params.keys():
        value = params[name]
        if isinstance(value, str):
            params[name] = json.loads(value) if value else None
    return params, files
