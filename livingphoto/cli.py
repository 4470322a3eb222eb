"""The ``livingphoto`` command: one parser, subcommands registered by the package that owns them.

Each subcommand module exposes ``register(subparsers)`` which adds its parser and sets
``handler`` (``Callable[[argparse.Namespace], int]``) as a default; ``SUBCOMMANDS`` lists the
modules and their commands, and only the module of the command being run is imported. Errors
become one line on stderr and the exit codes of DESIGN.md section 2; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from livingphoto import __version__
from livingphoto.errors import LivingPhotoError

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Subcommands:
    """A module that registers subcommands, and their one-line help (shown by ``--help``).

    The module is imported only when one of ``commands`` is run, so ``animate`` never pays for
    the service's or the bots' imports. Its ``register(sub)`` must add exactly these names.
    """

    module: str
    commands: dict[str, str]


# One line per module: the subcommand names it registers and their help. Keep the help texts
# equal to the ones ``register`` sets (a test checks).
SUBCOMMANDS: tuple[Subcommands, ...] = (
    Subcommands(
        "generation.animate_cli",
        {"animate": "turn a photo and a motion prompt into looping clips"},
    ),
    Subcommands(
        "generation.service.cli",
        {
            "service": "run the generation service (HTTP API)",
            "worker": "run one generation worker on a Redis queue",
            "serve": "service + embedded worker + every configured bot",
        },
    ),
    Subcommands("bot.cli", {"bot": "run a chat bot (telegram or discord)"}),
    Subcommands(
        "moderation.audit_cli", {"audit": "list recent moderation refusals from the audit log"}
    ),
    Subcommands(
        "generation.restore_cli", {"restore": "clean an old scan (grain, dust, scratches, creases)"}
    ),
    Subcommands(
        "generation.score_cli",
        {"score": "score clips against their source photo (identity, seam, flicker, motion)"},
    ),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs: its first argument that is not an option (the top-level
    parser has no option that takes a value)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``livingphoto`` parser.

    With ``argv``, only the module of the subcommand it runs is imported (the others get a
    placeholder parser with their help line, for ``livingphoto --help``); without, every
    subcommand is registered in full (tests, documentation checks).
    """
    parser = OneLineParser(
        prog="livingphoto", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--version", action="version", version=f"livingphoto {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    chosen = None if argv is None else _chosen(argv)
    for entry in SUBCOMMANDS:
        if argv is None or chosen in entry.commands:
            module = importlib.import_module(entry.module)
            register: Callable[[argparse._SubParsersAction[Any]], None] = module.register
            register(sub)
        else:
            for name, text in entry.commands.items():
                sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(arguments)
    args = parser.parse_args(arguments)
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
    """The console entry point (``livingphoto``, ``python -m livingphoto``)."""
    # numpy's OpenBLAS starts one thread per core, and each spins for about 0.1 s of CPU after
    # numpy's import and after every call that used it. This program runs its own threads and
    # processes (one per take) and its linear algebra is tiny: one BLAS thread. Set before numpy
    # is first imported, here and in the helper processes; an operator's own setting wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    leave(main())


def leave(code: int) -> NoReturn:
    """End the process with ``code`` once the command has returned, as the interpreter's exit
    does but without its teardown.

    A one-shot command (``animate`` above all) is done when ``main`` returns: its files are
    written and closed, its helper processes reaped, its output printed. What the interpreter
    would still do is free every module and object, one by one: ~25 ms after the output is
    complete, which the user waits for. So, when no other thread runs, the ``atexit``
    handlers run (logging's flush among them), the standard streams are flushed (exit status
    120 when stdout cannot be, as the interpreter reports it) and ``os._exit`` ends the
    process. A thread still running (daemon or not) gets the interpreter's ordinary exit."""
    import threading

    if threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or stream
            if stream is sys.stdout and code == 0:
                code = 120
    os._exit(code)


if __name__ == "__main__":
    run()
