"""``livingphoto bot discord``: run the Discord bot on the shared conversation flow.

Every resource is opened here, once, and passed in by constructor: the HTTP session (service
client and photo downloads), the bot's SQLite state, the discord.py client and the ``Flow``.
``DISCORD_API_BASE_URL`` / ``DISCORD_GATEWAY_URL`` point discord.py elsewhere (a local emulator).

Usage::

    livingphoto bot discord                        # until Ctrl-C / SIGTERM
    await run_bot(settings, stop_event)            # inside ``livingphoto serve``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket

from bot.client import ServiceClient
from bot.config import BotSettings
from bot.discord.bot import LivingPhotoBot, Router
from bot.discord.port import DiscordPort
from bot.flow import Flow, FlowOptions
from bot.state import BotState
from livingphoto.errors import LivingPhotoError, UsageError
from livingphoto.settings import Settings

log = logging.getLogger(__name__)


class DiscordUnavailable(LivingPhotoError):
    """The Discord gateway failed for good (exit 1)."""


@dataclass(frozen=True)
class DiscordOptions:
    """Knobs of the discord.py client that are not user configuration."""

    guild_ready_timeout: float = 2.0
    sync_commands: bool = True


def point_discord_at(settings: BotSettings) -> None:
    """Aim discord.py's REST and gateway at the configured addresses (class attributes)."""
    api = settings.discord_api_base_url.rstrip("/")
    gateway = yarl.URL(settings.discord_gateway_url)
    if not api.startswith(("http://", "https://")):
        raise UsageError(f"DISCORD_API_BASE_URL must be an http(s) URL, got {api!r}")
    if gateway.scheme not in {"ws", "wss"}:
        raise UsageError(
            f"DISCORD_GATEWAY_URL must be a ws:// or wss:// URL, got {settings.discord_gateway_url!r}"
        )
    discord.http.Route.BASE = api
    DiscordWebSocket.DEFAULT_GATEWAY = gateway


async def run_bot(
    settings: Settings, stop: asyncio.Event, options: DiscordOptions | None = None
) -> None:
    """Run until ``stop`` is set (or the gateway fails for good). Raises ``UsageError`` on bad
    configuration or a token Discord rejects."""
    opts = options or DiscordOptions()
    config = settings.bot
    if not config.discord_token:
        raise UsageError("DISCORD_BOT_TOKEN is not set")
    point_discord_at(config)
    flow_options = FlowOptions.from_settings(config)
    async with (
        aiohttp.ClientSession() as http,
        LivingPhotoBot(
            guild_ready_timeout=opts.guild_ready_timeout, sync_commands=opts.sync_commands
        ) as bot,
    ):
        with BotState.open(config.state_path("discord")) as state:
            try:
                await bot.login(config.discord_token)
            except discord.LoginFailure:
                raise UsageError("Discord rejected DISCORD_BOT_TOKEN") from None
            except (aiohttp.ClientError, discord.HTTPException) as error:
                raise UsageError(f"cannot reach the Discord API: {error}") from None
            port = DiscordPort(bot, http)
            service = ServiceClient(http, config.service_url, config.service_token)
            connection: asyncio.Task[None] | None = None
            try:
                async with Flow(port, service, state, flow_options) as flow:
                    bot.route_to(Router(flow, port, bot))
                    connection = asyncio.create_task(bot.connect(), name="discord-gateway")
                    await _first_of(connection, stop)
                # The flow's background work is cancelled; only now close the client.
            finally:
                await bot.close()
                if connection is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.gather(connection, return_exceptions=True)
            _raise_gateway_failure(connection, stop)


async def _first_of(connection: asyncio.Task[None], stop: asyncio.Event) -> None:
    stopping = asyncio.create_task(stop.wait(), name="discord-stop")
    try:
        await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


def _raise_gateway_failure(connection: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
    if connection is None or not connection.done() or connection.cancelled():
        return
    error = connection.exception()
    if isinstance(error, discord.PrivilegedIntentsRequired):
        raise UsageError("the Discord application lacks a privileged intent the bot asked for")
    if error is not None and not stop.is_set():
        raise DiscordUnavailable(f"lost the Discord gateway: {error}")


def main(settings: Settings) -> int:
    """Entry point of ``livingphoto bot discord``: 0 on a clean stop, 2 on bad configuration."""

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run_bot(settings, stop)

    try:
        asyncio.run(serve())
    except LivingPhotoError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 0
    return 0
