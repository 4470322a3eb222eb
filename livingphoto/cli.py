"""The ``livingphoto`` command: one parser, subcommands registered by the package that owns them.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default. Errors become one line on
stderr and the exit codes of DESIGN.md section 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from livingphoto import __version__
from livingphoto.errors import LivingPhotoError

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from bot import cli as bot_cli
    from generation import animate_cli, restore_cli, score_cli
    from generation.service import cli as service_cli
    from moderation import audit_cli

    parser = OneLineParser(
        prog="livingphoto", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"livingphoto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    animate_cli.register(sub)
    service_cli.register(sub)
    bot_cli.register(sub)
    audit_cli.register(sub)
    restore_cli.register(sub)
    score_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except LivingPhotoError as error:
        print(f"livingphoto: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("livingphoto: interrupted", file=sys.stderr)
        return 130


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()
