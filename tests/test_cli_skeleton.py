from __future__ import annotations

import subprocess
import sys


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
