from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_version_prints_and_exits_zero() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "livingphoto", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("livingphoto ")


def test_unknown_subcommand_is_one_line_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "livingphoto", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def _leaving(body: str, tmp_path: Path, **run: object) -> subprocess.CompletedProcess[str]:
    """A process that runs ``body`` and then ``livingphoto.cli.leave`` with its ``code``."""
    script = (
        "import atexit, sys, threading, time\n"
        "from livingphoto.cli import leave\n"
        f"marker = {str(tmp_path / 'atexit')!r}\n"
        "atexit.register(lambda: open(marker, 'w').write('ran'))\n"
        f"{body}\n"
        "leave(code)\n"
    )
    # Buffered streams, as a user's terminal or pipe has them.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-c", script], text=True, timeout=60, env=env, **run
    )


def test_leaving_keeps_the_exit_code_the_output_and_the_exit_handlers(tmp_path: Path) -> None:
    # Buffered output (stdout is a pipe here) is flushed, stderr too, and atexit handlers run.
    done = _leaving(
        "print('answer', end=''); print('note', file=sys.stderr); code = 3",
        tmp_path,
        capture_output=True,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "answer", "note\n")
    assert (tmp_path / "atexit").read_text() == "ran"


def test_leaving_waits_for_a_thread_that_still_runs(tmp_path: Path) -> None:
    body = (
        "def work():\n"
        "    time.sleep(0.3)\n"
        "    print('finished', flush=True)\n"
        "threading.Thread(target=work).start()\n"
        "code = 0"
    )
    done = _leaving(body, tmp_path, capture_output=True)
    assert (done.returncode, done.stdout) == (0, "finished\n")
    assert (tmp_path / "atexit").read_text() == "ran"


def test_leaving_with_stdout_closed_reports_it_as_the_interpreter_does(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # nobody reads: the final flush fails (EPIPE)
    try:
        done = _leaving("print('lost'); code = 0", tmp_path, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert done.returncode == 120
    assert (tmp_path / "atexit").read_text() == "ran"
