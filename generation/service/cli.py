"""``livingphoto service``, ``livingphoto worker`` and ``livingphoto serve``.

Usage::

    livingphoto service --port 8750 --data-dir data            # API + embedded worker
    livingphoto service --queue redis://127.0.0.1:6379/0       # API only; jobs go to Redis
    livingphoto worker --queue redis://127.0.0.1:6379/0        # one GPU/CPU worker (same data dir)
    livingphoto serve                                          # API + worker + configured bots

``--port 0`` binds a free port; the bound address is logged ("listening on http://…") and,
with ``--ready-file PATH``, written to PATH as JSON ``{"url": …, "pid": …}`` once serving.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from contextlib import suppress
from pathlib import Path
from typing import Any

from aiohttp import web

from generation.backends import BACKEND_NAMES, make_backend
from generation.service.app import create_app
from generation.service.execute import JobRunner
from generation.service.media import MediaStore
from generation.service.ready import write_ready_file
from generation.service.redis_queue import RedisKeys, open_client
from generation.service.worker import RedisWorker
from livingphoto.errors import UsageError
from livingphoto.settings import Settings

log = logging.getLogger(__name__)

BotRunner = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``service``, ``worker`` and ``serve`` to ``sub``."""
    service = sub.add_parser("service", help="run the generation service (HTTP API)")
    _service_options(service)
    service.set_defaults(handler=run_service)

    worker = sub.add_parser("worker", help="run one generation worker on a Redis queue")
    worker.add_argument("--queue", required=True, help="redis://host:port/db")
    _common_options(worker)
    worker.add_argument("--ready-file", type=Path, help="write JSON {consumer, pid} when ready")
    worker.set_defaults(handler=run_worker)

    serve = sub.add_parser("serve", help="service + embedded worker + every configured bot")
    _service_options(serve)
    serve.set_defaults(handler=run_serve)


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="data directory (LIVINGPHOTO_DATA_DIR)")
    parser.add_argument("--backend", choices=BACKEND_NAMES, help="LIVINGPHOTO_BACKEND")
    parser.add_argument("--model", help="model id or directory (LIVINGPHOTO_MODEL)")


def _service_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to bind (LIVINGPHOTO_HOST)")
    parser.add_argument("--port", type=int, help="port, 0 for any free one (LIVINGPHOTO_PORT)")
    parser.add_argument("--queue", help="embedded or redis://host:port/db (LIVINGPHOTO_QUEUE)")
    _common_options(parser)
    parser.add_argument("--ready-file", type=Path, help="write JSON {url, pid} when listening")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the command-line options applied on top."""
    settings = Settings.from_env()
    service = settings.service
    generation = settings.generation
    for name in ("host", "port", "queue", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            service = dataclasses.replace(service, **{name: value})
    for name in ("backend", "model"):
        value = getattr(args, name, None)
        if value is not None:
            generation = dataclasses.replace(generation, **{name: value})
    if not 0 <= service.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {service.port}")
    service.check_queue()
    return dataclasses.replace(settings, service=service, generation=generation)


def run_service(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    settings.configure_logging()
    asyncio.run(_serve(settings, args.ready_file, with_bots=False))
    return 0


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if settings.service.uses_redis:
        raise UsageError("serve runs the embedded worker; use 'service' with a Redis queue")
    settings.configure_logging()
    asyncio.run(_serve(settings, args.ready_file, with_bots=True))
    return 0


def run_worker(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if not settings.service.uses_redis:
        raise UsageError("worker needs --queue redis://host:port/db")
    settings.configure_logging()
    asyncio.run(_work(settings, args.ready_file))
    return 0


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def _serve(settings: Settings, ready_file: Path | None, with_bots: bool) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.service.host, settings.service.port)
        try:
            await site.start()
        except OSError as error:
            raise UsageError(
                f"cannot listen on {settings.service.host}:{settings.service.port}: "
                f"{error.strerror or error}"
            ) from None
        url = bound_url(runner, settings.service.host)
        print(f"livingphoto: listening on {url}", file=sys.stderr, flush=True)
        log.info("listening on %s", url)
        if ready_file is not None:
            write_ready_file(ready_file, {"url": url, "pid": os.getpid()})
        if with_bots:
            await run_bots(settings, url, stop)
        else:
            await stop.wait()
    finally:
        await runner.cleanup()


def bound_url(runner: web.AppRunner, host: str) -> str:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_host = str(address[0])
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            return f"http://{shown}:{address[1]}"
    raise UsageError(f"the service did not bind an address on {host}")


def configured_bots(settings: Settings) -> dict[str, BotRunner]:
    """The bots whose token is set, imported lazily (``bot.<platform>.app.run_bot``)."""
    bots: dict[str, BotRunner] = {}
    try:
        if settings.bot.telegram_token:
            from bot.telegram.app import run_bot as run_telegram

            bots["telegram"] = run_telegram
        if settings.bot.discord_token:
            from bot.discord.app import run_bot as run_discord

            bots["discord"] = run_discord
    except ImportError as error:
        raise UsageError(f"a configured bot cannot start: {error}") from None
    return bots


async def run_bots(settings: Settings, service_url: str, stop: asyncio.Event) -> None:
    """Run every configured bot against this process's service until ``stop`` is set.

    A bot that stops with an error stops ``serve`` (its error is reported, exit code kept).
    """
    bot_settings = dataclasses.replace(
        settings.bot, service_url=service_url, service_token=settings.service.service_token
    )
    local = dataclasses.replace(settings, bot=bot_settings)
    bots = configured_bots(local)
    if not bots:
        log.info("no bot token set: serving the API only")
        await stop.wait()
        return
    tasks = {
        asyncio.create_task(runner(local, stop), name=f"bot-{name}"): name
        for name, runner in bots.items()
    }
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({*tasks, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await asyncio.gather(*tasks, stopping, return_exceptions=True)
    for task, name in tasks.items():
        if task in done and not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert error is not None
            log.error("the %s bot stopped: %s", name, error)
            raise error


async def _work(settings: Settings, ready_file: Path | None) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    service = settings.service
    backend = make_backend(
        settings.generation.backend,
        settings.generation.model,
        settings.generation.backend_options(),
    )
    runner = JobRunner(backend, MediaStore(service.data_dir))
    await asyncio.to_thread(runner.setup)
    async with open_client(service.queue) as client:
        worker = RedisWorker(
            client, RedisKeys(service.redis_prefix), runner, service.lease_s, service.max_deliveries
        )
        print(f"livingphoto: worker {worker.consumer} on the Redis queue", file=sys.stderr)
        await worker.run(stop, ready_file)
