"""Child processes that do one job for the CLI beside it (``generation.embedding``,
``moderation.cli_check``): started the same way, stopped the same way.

A helper talks on its stdin and stdout; its stderr goes nowhere (a helper that fails is replaced
by the same work in the calling process, so its traceback is never the user's business).

Two ways to start one:

- ``start_helper``: ``python -m module args...``, a fresh interpreter that imports what it needs
  (about 0.1 s of one core for Python and numpy alone). Works anywhere, at any moment.
- ``fork_helper``: ``os.fork()``, the child runs a function and exits. It inherits every module
  already imported (numpy, Pillow, ...), so it starts with that work done: the moderation check
  costs about half the CPU. Only safe while this process has a single thread (``can_fork``: a
  lock held by another thread at the fork would stay locked in the child forever), and only on
  Linux (macOS system libraries do not survive a fork without exec).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, BinaryIO, Protocol, Self


class Helper(Protocol):
    """What the CLI uses of a child process (``subprocess.Popen`` or ``ForkedHelper``)."""

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def kill(self) -> None: ...


def start_helper(module: str, *args: str) -> subprocess.Popen[bytes]:
    """``python -m module args...`` with this interpreter, stdin and stdout piped.

    Raises ``OSError`` when the process cannot be started."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def can_fork() -> bool:
    """Whether ``fork_helper`` is safe here: Linux, and this process runs one thread (counted by
    the kernel, so threads of native libraries count too)."""
    if sys.platform != "linux":
        return False
    try:
        return sum(1 for _ in Path("/proc/self/task").iterdir()) == 1
    except OSError:
        return False


@dataclass
class ForkedHelper:
    """A child made by ``fork_helper``: its pid and this end of its stdin and stdout pipes."""

    pid: int
    stdin: BinaryIO | None
    stdout: BinaryIO | None
    returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the child has ended (it is then reaped), else None."""
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        """Wait for the child to end; its exit code (negative: killed by that signal)."""
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the child (no-op once it has been reaped)."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def fork_helper(work: Callable[[BinaryIO, BinaryIO], int]) -> ForkedHelper:
    """Fork; the child runs ``work(stdin, stdout)`` on its ends of two new pipes and exits with
    its return value (1 if it raised: anything, even ``KeyboardInterrupt``), never returning
    into the caller's code and running none of its ``atexit`` handlers or ``finally`` blocks.

    Call only when ``can_fork()``. Raises ``OSError`` when the pipes or the fork fail."""
    from_child, child_out = os.pipe()
    child_in, to_child = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (from_child, child_out, child_in, to_child):
            os.close(fd)
        raise
    if pid == 0:  # the child
        code = 1
        try:
            os.close(from_child)
            os.close(to_child)
            # The terminal's descriptors are the parent's alone: the child talks on its pipes,
            # and nothing it (or a library in it) prints can reach the user's stdout (a --json
            # answer) or stderr, as for start_helper's children.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
            # What was inherited lives until exit: keep the collector off it (its passes would
            # also copy every page they touch).
            gc.freeze()
            with os.fdopen(child_in, "rb") as stdin, os.fdopen(child_out, "wb") as stdout:
                code = work(stdin, stdout)
        except BaseException:  # the child must reach os._exit, whatever happens
            code = 1
        finally:
            os._exit(code)
    os.close(child_out)
    os.close(child_in)
    return ForkedHelper(pid, os.fdopen(to_child, "wb"), os.fdopen(from_child, "rb"))


def stop_helper(process: Helper | None) -> None:
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
