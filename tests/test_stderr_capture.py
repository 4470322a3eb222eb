"""livingphoto.stderr_capture: C-level stderr caught during a call, the rest passed through."""

from __future__ import annotations

import os
import threading

import pytest

from livingphoto.stderr_capture import captured_stderr


def _claims(line: str) -> bool:
    return line.startswith("Corrupt JPEG data")


def test_claimed_lines_are_kept_and_the_rest_written_back(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with captured_stderr(_claims) as caught:
        os.write(2, b"Corrupt JPEG data: bad Huffman code\nsomething else\n")
        os.write(2, b"Corrupt JPEG data: premature end of data segment\n")
    assert caught.lines == [
        "Corrupt JPEG data: bad Huffman code",
        "Corrupt JPEG data: premature end of data segment",
    ]
    assert capfd.readouterr().err == "something else\n"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # descriptor 2 is back where it was


def test_other_threads_output_is_delayed_not_lost(capfd: pytest.CaptureFixture[str]) -> None:
    with captured_stderr(_claims) as caught:
        writer = threading.Thread(target=os.write, args=(2, b"from another thread\n"))
        writer.start()
        writer.join()
    assert caught.lines == []
    assert capfd.readouterr().err == "from another thread\n"


def test_descriptor_two_is_restored_when_the_block_raises(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(RuntimeError), captured_stderr(_claims):
        raise RuntimeError("boom")
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"
