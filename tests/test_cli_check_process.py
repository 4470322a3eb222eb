"""The CLI's moderation check in a helper process gives the in-process verdict, audited, and a
check whose process cannot answer runs in-process instead: never let through unchecked."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import images
import numpy as np
import pytest
from numpy.typing import NDArray

from livingphoto.errors import PolicyRefusal
from moderation.audit import AuditLog
from moderation.cli_check import CheckProcess, CheckUnavailable, CliModeration, _error_from
from moderation.intake import load_image


@pytest.fixture(scope="module")
def photo() -> NDArray[np.uint8]:
    return load_image(images.astronaut_bytes()).rgb


def _audited(data_dir: Path) -> list[str]:
    log = AuditLog.open_readonly(data_dir)
    try:
        return [entry.outcome for entry in log.recent()]
    finally:
        log.close()


def test_an_allowed_request_is_allowed_and_audited(
    tmp_path: Path, photo: NDArray[np.uint8]
) -> None:
    with CheckProcess(tmp_path).start() as check:
        check.submit("subtle blink, gentle breathing", photo)
        check.verdict()  # returns: allowed
    assert _audited(tmp_path) == ["allowed"]


def test_a_refusal_comes_back_as_the_same_error(tmp_path: Path, photo: NDArray[np.uint8]) -> None:
    prompt = "make her take off her shirt"
    with pytest.raises(PolicyRefusal) as here:
        CliModeration.load().check(prompt, photo, tmp_path / "here")
    with CheckProcess(tmp_path / "there").start() as check:
        check.submit(prompt, photo)
        with pytest.raises(PolicyRefusal) as there:
            check.verdict()
    assert (there.value.category, str(there.value), there.value.rule) == (
        here.value.category,
        str(here.value),
        here.value.rule,
    )
    assert _audited(tmp_path / "there") == ["refused"]


def test_a_process_that_died_gives_no_verdict(tmp_path: Path, photo: NDArray[np.uint8]) -> None:
    with CheckProcess(tmp_path).start() as check:
        check.close()  # as if it had crashed
        check.submit("subtle blink", photo)
        with pytest.raises(CheckUnavailable):
            check.verdict()


def test_an_unknown_answer_is_no_verdict() -> None:
    assert isinstance(_error_from({"error": "SomethingElse", "message": "?"}), CheckUnavailable)
    assert isinstance(_error_from({}), CheckUnavailable)


def test_a_big_photo_is_checked_on_a_copy_at_most_1024_px_long() -> None:
    from moderation.cli_check import CHECK_LONG_SIDE, moderation_copy

    small = np.zeros((300, 200, 3), dtype=np.uint8)
    assert moderation_copy(small) is small
    big = np.full((3000, 4000, 3), 200, dtype=np.uint8)
    copy = moderation_copy(big)
    assert copy.shape == (768, CHECK_LONG_SIDE, 3) and copy.dtype == np.uint8
    assert int(copy[100, 100, 0]) == 200


@pytest.mark.parametrize("fork", [False, True])
def test_a_forked_and_a_fresh_child_give_the_same_verdicts(tmp_path: Path, fork: bool) -> None:
    """Both ways of starting the child, in a fresh single-threaded interpreter (forking this
    test process, which may run threads, is what ``can_fork`` guards against)."""
    script = f"""
import sys
from pathlib import Path
import images
from livingphoto.errors import PolicyRefusal
from moderation.cli_check import CheckProcess
from moderation.intake import load_image
photo = load_image(images.astronaut_bytes()).rgb
with CheckProcess(Path(sys.argv[1]), fork={fork}).start() as check:
    assert check.forked is {fork}
    check.submit("subtle blink, gentle breathing", photo)
    check.verdict()
with CheckProcess(Path(sys.argv[1]), fork={fork}).start() as check:
    check.submit("make her take off her shirt", photo)
    try:
        check.verdict()
    except PolicyRefusal as error:
        print("refused", error.category)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "refused"
    assert _audited(tmp_path) == ["refused", "allowed"]


def test_a_fresh_single_threaded_process_forks_and_a_threaded_one_does_not() -> None:
    from livingphoto.helper_process import can_fork

    script = """
import threading
from livingphoto.helper_process import can_fork
alone = can_fork()
stop = threading.Event()
worker = threading.Thread(target=stop.wait)
worker.start()
print(alone, can_fork())
stop.set()
worker.join()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    expected = "True False" if sys.platform == "linux" else "False False"
    assert done.stdout.split() == expected.split()
    if threading.active_count() > 1:
        assert can_fork() is False


def test_a_forked_child_that_raises_exits_1_and_never_returns_here() -> None:
    """(``os.fork`` is POSIX; the CLI forks on Linux only, elsewhere it starts a fresh child.)"""
    script = """
from livingphoto.helper_process import fork_helper
def work(stdin, stdout):
    print("the child's own print")  # must not reach the parent's stdout
    stdout.write(stdin.read(3).upper())
    stdout.flush()
    raise RuntimeError("boom")
child = fork_helper(work)
child.stdin.write(b"abc")
child.stdin.close()
print(child.stdout.read().decode(), child.wait())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    # One line: the child's exception neither printed a traceback nor ran the parent's print.
    assert done.stdout.splitlines() == ["ABC 1"]
    assert done.stderr == ""
