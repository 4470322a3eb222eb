"""``livingphoto bot telegram|discord``: run one chat bot against the generation service."""

from __future__ import annotations

import argparse
from typing import Any

from livingphoto.settings import Settings


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("bot", help="run a chat bot (telegram or discord)")
    parser.add_argument("platform", choices=["telegram", "discord"])
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    settings.configure_logging()
    if args.platform == "telegram":
        from bot.telegram.app import main as telegram_main

        return telegram_main(settings)
    from bot.discord.app import main as discord_main

    return discord_main(settings)
