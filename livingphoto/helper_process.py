"""Child Python processes that do one job for the CLI beside it (``generation.embedding``,
``moderation.cli_check``): started the same way, stopped the same way.

A helper talks on its stdin and stdout; its stderr goes nowhere (a helper that fails is replaced
by the same work in the calling process, so its traceback is never the user's business).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from types import TracebackType
from typing import Self


def start_helper(module: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m module args...`` with this interpreter, stdin and stdout piped.

    Raises ``OSError`` when the process cannot be started."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def stop_helper(process: subprocess.Popen[bytes] | None) -> None:
    """Kill ``process`` if it still runs, reap it and close its pipes (idempotent; None: no-op).
    A helper keeps nothing worth waiting for."""
    if process is None:
        return
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


class ClosedOnExit:
    """``with`` for a helper's handle: the block's end calls ``close()`` (which subclasses
    define: idempotent, never raising for a child that is already gone)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
