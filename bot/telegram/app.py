"""The Telegram bot: python-telegram-bot application + the shared flow.

Usage::

    livingphoto bot telegram        # TELEGRAM_BOT_TOKEN, LIVINGPHOTO_SERVICE_URL/TOKEN set

``run_bot(settings, stop)`` runs until ``stop`` is set (``livingphoto serve`` awaits it next to
the service); ``main(settings)`` runs it until SIGINT/SIGTERM. Point it at an emulator with
``TELEGRAM_API_BASE_URL`` / ``TELEGRAM_FILE_BASE_URL``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import aiohttp
from telegram import Bot, BotCommand
from telegram.error import TelegramError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.client import ServiceClient
from bot.config import BotSettings
from bot.flow import Flow, FlowOptions
from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES
from bot.state import BotState
from bot.telegram.handlers import install
from bot.telegram.port import TelegramPort
from bot.texts import for_language
from livingphoto.errors import LivingPhotoError, UsageError
from livingphoto.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query", "message_reaction")
COMMAND_NAMES = ("animate", "settings", "consent", "forget", "help")
POLL_TIMEOUT_S = 10


class TelegramUnavailable(LivingPhotoError):
    """Telegram (or the configured Bot API server) could not be used."""

    exit_code = 1


def commands(language: str) -> list[BotCommand]:
    """The command menu in ``language`` (descriptions from the catalogues)."""
    descriptions = for_language(language).command_descriptions()
    return [BotCommand(name, descriptions[name]) for name in COMMAND_NAMES]


COMMANDS: tuple[BotCommand, ...] = tuple(commands(DEFAULT_LANGUAGE))  # the English menu


async def register_commands(bot: Bot) -> None:
    """The English menu for everyone, and a translated one per language (``language_code``)."""
    await bot.set_my_commands(commands(DEFAULT_LANGUAGE))
    for language in LANGUAGES:
        if language != DEFAULT_LANGUAGE:
            await bot.set_my_commands(commands(language), language_code=language)


def build_application(settings: BotSettings) -> Application[Any, Any, Any, Any, Any, Any]:
    if not settings.telegram_token:
        raise UsageError("TELEGRAM_BOT_TOKEN is not set")
    return (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .rate_limiter(AIORateLimiter(max_retries=5))
        .build()
    )


async def run_bot(settings: Settings, stop: asyncio.Event) -> None:
    """Run the Telegram bot until ``stop`` is set."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its INFO lines carry the bot token
    config = settings.bot
    application = build_application(config)
    try:
        async with aiohttp.ClientSession() as http, application:
            client = ServiceClient(http, config.service_url, config.service_token)
            with BotState.open(config.state_path("telegram")) as state:
                port = TelegramPort(application.bot)
                async with Flow(port, client, state, FlowOptions.from_settings(config)) as flow:
                    install(application, flow)
                    await register_commands(application.bot)
                    await application.start()
                    updater = application.updater
                    if updater is None:
                        raise TelegramUnavailable("the Telegram application has no updater")
                    await updater.start_polling(
                        allowed_updates=list(ALLOWED_UPDATES), timeout=POLL_TIMEOUT_S
                    )
                    log.info("telegram bot running")
                    try:
                        await stop.wait()
                    finally:
                        await updater.stop()
                        await application.stop()
    except TelegramError as error:
        raise TelegramUnavailable(f"Telegram bot stopped: {error}") from None


def main(settings: Settings) -> int:
    """Run the bot until interrupted; returns the exit code."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_bot(settings, stop)

    asyncio.run(run())
    return 0
