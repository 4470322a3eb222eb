"""What C libraries print on stderr, caught instead of shown.

Some C libraries report on file descriptor 2 directly (libjpeg's "Corrupt JPEG data: ..."
warnings inside OpenCV), where no Python setting reaches them. ``captured_stderr`` points
descriptor 2 at a temporary file for the duration of a call and hands back what was written;
anything the caller does not claim is written back to the real stderr afterwards, so output of
other threads in that window is delayed, never lost.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# One capture at a time in a process: descriptor 2 is process-wide. (A lock, not state.)
_ONE_AT_A_TIME = threading.Lock()


class Captured:
    """The lines written to descriptor 2 during a ``captured_stderr`` block (after it ends)."""

    def __init__(self) -> None:
        self.lines: list[str] = []


@contextmanager
def captured_stderr(claims: Callable[[str], bool]) -> Iterator[Captured]:
    """Capture descriptor 2 during the block; afterwards ``Captured.lines`` holds the lines for
    which ``claims(line)`` is true, and every other line is written back to stderr.

    Raises ``OSError`` only if descriptor 2 cannot be duplicated (the block does not run)."""
    captured = Captured()
    with _ONE_AT_A_TIME, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            try:
                yield captured
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode("utf-8", "replace")
    others: list[str] = []
    for line in text.splitlines():
        (captured.lines if claims(line) else others).append(line)
    if others:
        os.write(2, ("\n".join(others) + "\n").encode("utf-8", "replace"))
