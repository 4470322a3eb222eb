"""A local emulator of the Discord gateway and REST API, for running the real discord.py client in tests.

It speaks just enough of Discord (API v10) for a bot built on discord.py 2.7: the gateway websocket
(HELLO, heartbeat ACK, IDENTIFY -> READY -> GUILD_CREATE, dispatches) and the REST routes the bot calls
(login, application info, command sync, interaction callbacks and webhooks, channel messages with files
and components, reactions, DM channels), plus a CDN route serving attachments. Everything the bot sends
is recorded as :class:`Call` for assertions; routes it does not know are recorded in ``unknown`` and
answered 404.

Usage::

    async with DiscordEmulator() as emu:
        # point the bot at emu.api_base (DISCORD_API_BASE_URL) and emu.gateway_url (DISCORD_GATEWAY_URL)
        await emu.wait_identified()
        photo = emu.upload("face.png", png_bytes, "image/png")
        await emu.slash_command(emu.alice, emu.channel_id, "animate", {"photo": photo, "motion": "blink"})
        call = await emu.wait_for_call(lambda c: c.route == "POST /channels/{channel_id}/messages")

Replies carry ``Content-Type: application/json`` exactly: discord.py treats ``; charset=utf-8`` as text.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import BodyPartReader, WSMsgType, web

log = logging.getLogger(__name__)

JSON = dict[str, Any]
API_PREFIX = "/api/v10"
EPHEMERAL = 1 << 6
LOADING = 1 << 7
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class EmuUser:
    id: int
    name: str
    bot: bool = False
    locale: str = "en-US"  # the user's client language, sent as an interaction's ``locale``

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(frozen=True)
class UploadedFile:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Call:
    """One request the bot made: ``route`` is the template (e.g. ``POST /channels/{channel_id}/messages``)."""

    method: str
    path: str
    route: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    files: tuple[UploadedFile, ...] = ()
    status: int = 200
    response: Any = None  # the JSON the emulator answered


@dataclass(frozen=True)
class Attachment:
    """A file a user attached; served by the emulator's CDN route."""

    id: int
    filename: str
    content_type: str
    data: bytes
    url: str
    declared_size: int = 0  # the size Discord reports, when it should differ from the data

    def payload(self) -> JSON:
        return {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.declared_size or len(self.data),
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }


@dataclass
class _Interaction:
    id: int
    token: str
    channel_id: int
    user: EmuUser
    message_id: int | None = None  # the component's message (buttons)
    original_id: int | None = None  # the response message, once created
    responses: list[JSON] = field(default_factory=list)


@dataclass
class _Gateway:
    ws: web.WebSocketResponse
    seq: int = 0
    identify: JSON | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


class DiscordEmulator:
    """One guild with one text channel and three members (alice, bob, carol), plus DMs."""

    def __init__(self, *, heartbeat_interval_ms: int = 41250) -> None:
        self._ids = itertools.count(1_200_000_000_000_000_000)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.application_id = self.new_id()
        self.bot = EmuUser(self.application_id, "livingphoto", bot=True)
        self.alice = EmuUser(self.new_id(), "alice")
        self.bob = EmuUser(self.new_id(), "bob")
        self.carol = EmuUser(self.new_id(), "carol")
        self.guild_id = self.new_id()
        self.channel_id = self.new_id()
        self.guild_locale = "en-US"  # the guild's preferred locale (and interactions' guild_locale)
        self.admins: set[int] = {self.alice.id}  # members with the ADMINISTRATOR permission
        self.calls: list[Call] = []
        self.unknown: list[str] = []
        self.identifies: list[JSON] = []
        self.commands: dict[str, JSON] = {}
        self.messages: dict[int, JSON] = {}
        self.attachments: dict[int, Attachment] = {}
        self.upload_limits: dict[int, int] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self._channel_types: dict[int, int] = {self.channel_id: 0}
        self._interactions: dict[str, _Interaction] = {}
        self._gateways: list[_Gateway] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.heartbeats = 0
        self.close_on_identify = 0  # e.g. 4004: the gateway refuses the token
        self.reject_token = False  # answer login with 401, as for a wrong token
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> DiscordEmulator:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for gateway in list(self._gateways):
            await gateway.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/gateway"

    def new_id(self) -> int:
        return next(self._ids)

    def members(self) -> list[EmuUser]:
        return [self.bot, self.alice, self.bob, self.carol]

    def set_upload_limit(self, channel_id: int, limit: int) -> None:
        self.upload_limits[channel_id] = limit

    def upload_limit(self, channel_id: int) -> int:
        return self.upload_limits.get(channel_id, DEFAULT_UPLOAD_LIMIT)

    def dm_channel(self, user: EmuUser) -> int:
        if user.id not in self.dm_channels:
            channel_id = self.new_id()
            self.dm_channels[user.id] = channel_id
            self._channel_types[channel_id] = 1
        return self.dm_channels[user.id]

    def upload(
        self, filename: str, data: bytes, content_type: str, declared_size: int = 0
    ) -> Attachment:
        """A file a user attached (served on the CDN route until ``attachments`` drops it)."""
        attachment_id = self.new_id()
        url = f"{self.base_url}/cdn/{attachment_id}/{filename}"
        attachment = Attachment(attachment_id, filename, content_type, data, url, declared_size)
        self.attachments[attachment_id] = attachment
        return attachment

    # ------------------------------------------------------------------ waiting and queries
    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_call(
        self, predicate: Callable[[Call], bool], wait_s: float = 30.0, start: int = 0
    ) -> Call:
        """The first recorded call (from index ``start``) matching ``predicate``, waiting for it."""

        def find() -> Call | None:
            return next((c for c in self.calls[start:] if predicate(c)), None)

        async with asyncio.timeout(wait_s), self._changed:
            while (found := find()) is None:
                await self._changed.wait()
            return found

    async def wait_identified(self, count: int = 1, wait_s: float = 30.0) -> JSON:
        """Wait until ``count`` IDENTIFYs arrived in total and READY + GUILD_CREATE were sent."""
        async with asyncio.timeout(wait_s), self._changed:
            while len(self.identifies) < count:
                await self._changed.wait()
        return self.identifies[count - 1]

    def calls_to(self, route: str, start: int = 0) -> list[Call]:
        return [c for c in self.calls[start:] if c.route == route]

    def bot_messages(self, channel_id: int) -> list[JSON]:
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    # ------------------------------------------------------------------ gateway
    def _guild_payload(self) -> JSON:
        channel = self._channel_payload(self.channel_id)
        return {
            "id": str(self.guild_id),
            "name": "livingphoto test guild",
            "icon": None,
            "owner_id": str(self.alice.id),
            "unavailable": False,
            "member_count": len(self.members()),
            "large": False,
            "premium_tier": 0,
            "features": [],
            "roles": [
                {
                    "id": str(self.guild_id),
                    "name": "@everyone",
                    "permissions": str(0x0000_0000_0006_4C40 | 0x0000_0000_0000_8000),
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [channel],
            "threads": [],
            "members": [self._member_payload(u) for u in self.members()],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": _now(),
            "system_channel_flags": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "preferred_locale": self.guild_locale,
        }

    def _member_payload(self, user: EmuUser) -> JSON:
        return {
            "user": user.payload(),
            "roles": [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(0x0000_0000_0006_4C40 | (0x8 if user.id in self.admins else 0)),
        }

    def _channel_payload(self, channel_id: int) -> JSON:
        if self._channel_types.get(channel_id) == 1:
            user_id = next(u for u, c in self.dm_channels.items() if c == channel_id)
            user = next(u for u in self.members() if u.id == user_id)
            return {"id": str(channel_id), "type": 1, "recipients": [user.payload()]}
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "photos",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
        }

    async def _send(self, gateway: _Gateway, event: str, data: JSON) -> None:
        gateway.seq += 1
        await gateway.ws.send_str(json.dumps({"op": 0, "t": event, "s": gateway.seq, "d": data}))

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send one event to every connected (identified) bot."""
        live = [g for g in self._gateways if g.identify is not None and not g.ws.closed]
        if not live:
            raise RuntimeError("no bot is connected to the emulated gateway")
        for gateway in live:
            await self._send(gateway, event, data)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        gateway = _Gateway(ws)
        self._gateways.append(gateway)
        await ws.send_str(
            json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        )
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    self.heartbeats += 1
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2 and self.close_on_identify:
                    await ws.close(code=self.close_on_identify, message=b"Authentication failed.")
                elif op == 2:
                    await self._identify(gateway, frame["d"])
                elif op == 6:
                    # A resumed session: nothing was missed in the emulator.
                    gateway.identify = frame["d"]
                    await self._send(gateway, "RESUMED", {})
        finally:
            self._gateways.remove(gateway)
        return ws

    async def _identify(self, gateway: _Gateway, data: JSON) -> None:
        gateway.identify = data
        session_id = f"session-{self.new_id()}"
        await self._send(
            gateway,
            "READY",
            {
                "v": 10,
                "user": self.bot.payload(),
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": session_id,
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
            },
        )
        await self._send(gateway, "GUILD_CREATE", self._guild_payload())
        redacted = {k: v for k, v in data.items() if k != "token"}
        self.identifies.append(redacted)
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ user actions
    def _user_message(
        self,
        user: EmuUser,
        channel_id: int,
        content: str,
        attachments: list[Attachment],
        mentions: list[EmuUser],
    ) -> JSON:
        message: JSON = {
            "id": str(self.new_id()),
            "channel_id": str(channel_id),
            "author": user.payload(),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [m.payload() for m in mentions],
            "mention_roles": [],
            "attachments": [a.payload() for a in attachments],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        if self._channel_types.get(channel_id) == 0:
            message["guild_id"] = str(self.guild_id)
            message["member"] = {k: v for k, v in self._member_payload(user).items() if k != "user"}
        return message

    async def send_message(
        self,
        user: EmuUser,
        channel_id: int,
        content: str,
        attachments: list[Attachment] | None = None,
        mentions: list[EmuUser] | None = None,
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE)."""
        message = self._user_message(user, channel_id, content, attachments or [], mentions or [])
        await self.dispatch("MESSAGE_CREATE", message)
        return message

    def _interaction_base(self, user: EmuUser, channel_id: int, kind: int) -> tuple[JSON, str]:
        interaction_id = self.new_id()
        token = f"itoken-{interaction_id}"
        data: JSON = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "locale": user.locale,
            "app_permissions": str((1 << 41) - 1),
            "attachment_size_limit": self.upload_limit(channel_id),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "channel_id": str(channel_id),
            "channel": self._channel_payload(channel_id),
        }
        if self._channel_types.get(channel_id) == 0:
            data["guild_id"] = str(self.guild_id)
            data["guild_locale"] = self.guild_locale
            data["context"] = 0
            data["member"] = self._member_payload(user)
        else:
            data["context"] = 1
            data["user"] = user.payload()
        self._interactions[token] = _Interaction(interaction_id, token, channel_id, user)
        return data, token

    async def slash_command(
        self, user: EmuUser, channel_id: int, name: str, options: dict[str, Any]
    ) -> str:
        """A user runs ``/name`` with ``options`` (Attachment, str, int, float); returns the token."""
        data, token = self._interaction_base(user, channel_id, 2)
        command = self.commands.get(name)
        if command is None:
            raise RuntimeError(f"command /{name} was not synced by the bot")
        opts: list[JSON] = []
        resolved: JSON = {}
        for key, value in options.items():
            if isinstance(value, Attachment):
                opts.append({"name": key, "type": 11, "value": str(value.id)})
                resolved.setdefault("attachments", {})[str(value.id)] = value.payload()
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                raise TypeError(f"unsupported option value {value!r}")
            elif isinstance(value, str):
                opts.append({"name": key, "type": 3, "value": value})
            elif isinstance(value, int):
                opts.append({"name": key, "type": 4, "value": value})
            else:
                opts.append({"name": key, "type": 10, "value": value})
        data["data"] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": opts,
            "resolved": resolved,
        }
        await self.dispatch("INTERACTION_CREATE", data)
        return token

    async def press_button(self, user: EmuUser, message_id: int, custom_id: str) -> str:
        """A user presses a button on a message the bot sent; returns the interaction token."""
        message = self.messages[message_id]
        buttons = {b.get("custom_id"): b for b in self.components_of(message_id)}
        if custom_id not in buttons or buttons[custom_id].get("disabled"):
            raise LookupError(f"message {message_id} has no enabled button {custom_id!r}")
        data, token = self._interaction_base(user, int(message["channel_id"]), 3)
        data["message"] = message
        data["data"] = {"custom_id": custom_id, "component_type": 2}
        self._interactions[token].message_id = message_id
        await self.dispatch("INTERACTION_CREATE", data)
        return token

    async def add_reaction(self, user: EmuUser, message_id: int, emoji: str) -> None:
        """A user reacts to a message (MESSAGE_REACTION_ADD)."""
        message = self.messages[message_id]
        channel_id = int(message["channel_id"])
        data: JSON = {
            "user_id": str(user.id),
            "channel_id": str(channel_id),
            "message_id": str(message_id),
            "message_author_id": message["author"]["id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if self._channel_types.get(channel_id) == 0:
            data["guild_id"] = str(self.guild_id)
            data["member"] = self._member_payload(user)
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    def interaction_original(self, token: str) -> JSON:
        """The original response message of the interaction with ``token``."""
        interaction = self._interactions[token]
        if interaction.original_id is None:
            raise LookupError("the interaction has no response message")
        return self.messages[interaction.original_id]

    def interaction_calls(self, token: str) -> list[Call]:
        return [c for c in self.calls if token in c.path]

    def components_of(self, message_id: int) -> list[JSON]:
        """The buttons (flattened) of a message as the bot last set them."""
        rows = self.messages[message_id].get("components", [])
        return [comp for row in rows for comp in row.get("components", [])]

    # ------------------------------------------------------------------ REST
    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        attachment = self.attachments.get(int(request.match_info["attachment_id"]))
        if attachment is None:
            raise web.HTTPNotFound()
        return web.Response(body=attachment.data, content_type=attachment.content_type)

    async def _read_body(self, request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[UploadedFile] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                raw = await part.read()
                name = part.name or ""
                if part.filename:
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    files.append(UploadedFile(name, part.filename, ctype, bytes(raw)))
                elif name == "payload_json":
                    payload = json.loads(bytes(raw))
            return payload, tuple(files)
        raw = await request.read()
        return (json.loads(raw) if raw else None), ()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        route, params = _match(request.method, path)
        call = Call(request.method, path, route, params, dict(request.query), body, files)
        if not route:
            self.unknown.append(f"{request.method} {path}")
            log.warning("discord emulator: unknown route %s %s", request.method, path)
            await self._record(call)
            return _json({"message": "404: Not Found", "code": 0}, status=404)
        webhook = route.split(" ")[1].startswith(("/webhooks/", "/interactions/"))
        if not webhook and not request.headers.get("Authorization", "").startswith("Bot "):
            await self._record(replace(call, status=401))
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        handler = getattr(self, "_r_" + _handler_name(route), None)
        assert handler is not None, route
        response: web.Response = await handler(params, body, files, request)
        await self._record(
            Call(
                request.method,
                path,
                route,
                params,
                dict(request.query),
                body,
                files,
                response.status,
                json.loads(response.body)
                if isinstance(response.body, bytes) and response.body
                else None,
            )
        )
        return response

    async def _r_get_me(self, *_: Any) -> web.Response:
        if self.reject_token:
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _json(self.bot.payload())

    async def _r_get_app(self, *_: Any) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": "livingphoto",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.alice.payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "summary": "",
                "interactions_endpoint_url": None,
            }
        )

    async def _r_gateway(self, *_: Any) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _r_put_commands(self, params: dict[str, str], body: Any, *_: Any) -> web.Response:
        out = []
        for command in body or []:
            stored = {
                **command,
                "id": str(self.new_id()),
                "application_id": str(self.application_id),
                "version": "1",
                "default_member_permissions": command.get("default_member_permissions"),
                "type": command.get("type", 1),
            }
            self.commands[command["name"]] = stored
            out.append(stored)
        return _json(out)

    async def _r_get_commands(self, *_: Any) -> web.Response:
        return _json(list(self.commands.values()))

    def _too_large(self, channel_id: int, files: tuple[UploadedFile, ...]) -> web.Response | None:
        total = sum(len(f.data) for f in files)
        if total > self.upload_limit(channel_id):
            return _json({"message": "Request entity too large", "code": 40005}, status=413)
        return None

    def _store_message(
        self,
        channel_id: int,
        body: JSON,
        files: tuple[UploadedFile, ...],
        *,
        flags: int = 0,
        interaction: _Interaction | None = None,
    ) -> JSON:
        message_id = self.new_id()
        message: JSON = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot.payload(),
            "content": body.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments_from(files, []),
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "type": 0 if interaction is None else 20,
            "flags": int(body.get("flags") or 0) | flags,
            "components": body.get("components") or [],
            "reactions": [],
        }
        if self._channel_types.get(channel_id) == 0:
            message["guild_id"] = str(self.guild_id)
        if interaction is not None:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": 2,
                "user": interaction.user.payload(),
                "authorizing_integration_owners": {},
            }
        self.messages[message_id] = message
        return message

    def _attachments_from(self, files: tuple[UploadedFile, ...], kept: list[JSON]) -> list[JSON]:
        out = list(kept)
        for f in files:
            attachment = self.upload(f.filename, f.data, f.content_type)
            out.append(attachment.payload())
        return out

    def _edit_message(
        self, message_id: int, body: JSON | None, files: tuple[UploadedFile, ...]
    ) -> JSON | None:
        message = self.messages.get(message_id)
        if message is None:
            return None
        body = body or {}
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "attachments" in body or files:
            keep_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in message["attachments"] if a["id"] in keep_ids]
            message["attachments"] = self._attachments_from(files, kept)
        message["edited_timestamp"] = _now()
        return message

    async def _r_post_message(
        self, params: dict[str, str], body: Any, files: tuple[UploadedFile, ...], *_: Any
    ) -> web.Response:
        channel_id = int(params["channel_id"])
        if channel_id not in self._channel_types:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        if (too_large := self._too_large(channel_id, files)) is not None:
            return too_large
        return _json(self._store_message(channel_id, body or {}, files))

    async def _r_patch_message(
        self, params: dict[str, str], body: Any, files: tuple[UploadedFile, ...], *_: Any
    ) -> web.Response:
        if (too_large := self._too_large(int(params["channel_id"]), files)) is not None:
            return too_large
        message = self._edit_message(int(params["message_id"]), body, files)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(message)

    async def _r_get_message(self, params: dict[str, str], *_: Any) -> web.Response:
        message = self.messages.get(int(params["message_id"]))
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(message)

    async def _r_get_channel(self, params: dict[str, str], *_: Any) -> web.Response:
        channel_id = int(params["channel_id"])
        if channel_id not in self._channel_types:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(self._channel_payload(channel_id))

    async def _r_reaction(
        self, params: dict[str, str], body: Any, files: Any, request: web.Request
    ) -> web.Response:
        message_id = int(params["message_id"])
        if message_id not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if request.method == "PUT":
            # Like Discord, the bot's own reaction comes back to it as a gateway event.
            task = asyncio.create_task(self.add_reaction(self.bot, message_id, params["emoji"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.Response(status=204)

    async def _r_create_dm(self, params: dict[str, str], body: Any, *_: Any) -> web.Response:
        user_id = int(body["recipient_id"])
        user = next((u for u in self.members() if u.id == user_id), None)
        if user is None:
            return _json({"message": "Unknown User", "code": 10013}, status=404)
        return _json(self._channel_payload(self.dm_channel(user)))

    async def _r_callback(
        self, params: dict[str, str], body: Any, files: tuple[UploadedFile, ...], *_: Any
    ) -> web.Response:
        interaction = self._interactions.get(params["token"])
        if interaction is None or str(interaction.id) != params["interaction_id"]:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if interaction.responses:
            return _json(
                {"message": "Interaction has already been acknowledged.", "code": 40060},
                status=400,
            )
        body = body or {}
        interaction.responses.append(body)
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        info: JSON = {
            "id": str(interaction.id),
            "type": 2 if interaction.message_id is None else 3,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
        }
        resource: JSON | None = None
        if kind in (4, 5):
            message = self._store_message(
                interaction.channel_id,
                data if kind == 4 else {"flags": data.get("flags", 0)},
                files,
                interaction=interaction,
            )
            if kind == 5:
                message["flags"] = int(message["flags"]) | LOADING
            interaction.original_id = int(message["id"])
            info["response_message_id"] = message["id"]
            resource = {"type": kind, "message": message}
        elif kind == 7 and interaction.message_id is not None:
            edited = self._edit_message(interaction.message_id, data, files)
            interaction.original_id = interaction.message_id
            info["response_message_id"] = str(interaction.message_id)
            resource = {"type": kind, "message": edited}
        elif kind == 6 and interaction.message_id is not None:
            interaction.original_id = interaction.message_id
        return _json({"interaction": info, "resource": resource})

    def _webhook_interaction(self, params: dict[str, str]) -> _Interaction | None:
        if params.get("application_id") != str(self.application_id):
            return None
        return self._interactions.get(params["token"])

    async def _r_original(
        self,
        params: dict[str, str],
        body: Any,
        files: tuple[UploadedFile, ...],
        request: web.Request,
    ) -> web.Response:
        interaction = self._webhook_interaction(params)
        if interaction is None or interaction.original_id is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if request.method == "GET":
            return _json(self.messages[interaction.original_id])
        if request.method == "DELETE":
            self.messages.pop(interaction.original_id, None)
            return web.Response(status=204)
        if (too_large := self._too_large(interaction.channel_id, files)) is not None:
            return too_large
        message = self._edit_message(interaction.original_id, body, files)
        assert message is not None
        message["flags"] = int(message["flags"]) & ~LOADING
        return _json(message)

    async def _r_followup(
        self, params: dict[str, str], body: Any, files: tuple[UploadedFile, ...], *_: Any
    ) -> web.Response:
        interaction = self._webhook_interaction(params)
        if interaction is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if (too_large := self._too_large(interaction.channel_id, files)) is not None:
            return too_large
        original = self.messages.get(interaction.original_id or 0)
        if original is not None and int(original["flags"]) & LOADING:
            # Like Discord: a followup sent while the deferred "thinking" message is still loading
            # resolves it (becomes the original response), keeping the defer's ephemeral flag.
            edited = self._edit_message(interaction.original_id or 0, body, files)
            assert edited is not None
            edited["flags"] = int(original["flags"]) & ~LOADING
            return _json(edited)
        message = self._store_message(
            interaction.channel_id, body or {}, files, interaction=interaction
        )
        return _json(message)

    async def _r_followup_message(
        self,
        params: dict[str, str],
        body: Any,
        files: tuple[UploadedFile, ...],
        request: web.Request,
    ) -> web.Response:
        interaction = self._webhook_interaction(params)
        message_id = int(params["message_id"])
        if interaction is None or message_id not in self.messages:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if request.method == "GET":
            return _json(self.messages[message_id])
        if request.method == "DELETE":
            self.messages.pop(message_id, None)
            return web.Response(status=204)
        return _json(self._edit_message(message_id, body, files))


_ROUTES: list[tuple[str, str]] = [
    ("GET", "/users/@me"),
    ("GET", "/oauth2/applications/@me"),
    ("GET", "/gateway"),
    ("GET", "/gateway/bot"),
    ("PUT", "/applications/{application_id}/commands"),
    ("GET", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
    ("GET", "/channels/{channel_id}/messages/{message_id}"),
    ("GET", "/channels/{channel_id}"),
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"),
    ("POST", "/users/@me/channels"),
    ("POST", "/interactions/{interaction_id}/{token}/callback"),
    ("GET", "/webhooks/{application_id}/{token}/messages/@original"),
    ("PATCH", "/webhooks/{application_id}/{token}/messages/@original"),
    ("DELETE", "/webhooks/{application_id}/{token}/messages/@original"),
    ("POST", "/webhooks/{application_id}/{token}"),
    ("GET", "/webhooks/{application_id}/{token}/messages/{message_id}"),
    ("PATCH", "/webhooks/{application_id}/{token}/messages/{message_id}"),
    ("DELETE", "/webhooks/{application_id}/{token}/messages/{message_id}"),
]

_HANDLERS: dict[str, str] = {
    "GET /users/@me": "get_me",
    "GET /oauth2/applications/@me": "get_app",
    "GET /gateway": "gateway",
    "GET /gateway/bot": "gateway",
    "PUT /applications/{application_id}/commands": "put_commands",
    "GET /applications/{application_id}/commands": "get_commands",
    "PUT /applications/{application_id}/guilds/{guild_id}/commands": "put_commands",
    "POST /channels/{channel_id}/messages": "post_message",
    "PATCH /channels/{channel_id}/messages/{message_id}": "patch_message",
    "GET /channels/{channel_id}/messages/{message_id}": "get_message",
    "GET /channels/{channel_id}": "get_channel",
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": "reaction",
    "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me": "reaction",
    "POST /users/@me/channels": "create_dm",
    "POST /interactions/{interaction_id}/{token}/callback": "callback",
    "GET /webhooks/{application_id}/{token}/messages/@original": "original",
    "PATCH /webhooks/{application_id}/{token}/messages/@original": "original",
    "DELETE /webhooks/{application_id}/{token}/messages/@original": "original",
    "POST /webhooks/{application_id}/{token}": "followup",
    "GET /webhooks/{application_id}/{token}/messages/{message_id}": "followup_message",
    "PATCH /webhooks/{application_id}/{token}/messages/{message_id}": "followup_message",
    "DELETE /webhooks/{application_id}/{token}/messages/{message_id}": "followup_message",
}


def _handler_name(route: str) -> str:
    return _HANDLERS[route]


def _match(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route template matching ``method path`` (literal segments win) and its parameters."""
    segments = path.strip("/").split("/")
    for route_method, template in _ROUTES:
        if route_method != method:
            continue
        parts = template.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{"):
                if segment.startswith("@") and part != "{emoji}":
                    break
                params[part[1:-1]] = unquote(segment)
            elif part != segment:
                break
        else:
            return f"{method} {template}", params
    return "", {}
