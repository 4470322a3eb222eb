"""``livingphoto bot telegram`` refuses bad configuration with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_bot_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "LIVINGPHOTO_"))}
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", "bot", "telegram"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .env here
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "TELEGRAM_BOT_TOKEN is not set"),
        (
            {"TELEGRAM_BOT_TOKEN": "1:x", "LIVINGPHOTO_VOTE_WINDOW_S": "soon"},
            "LIVINGPHOTO_VOTE_WINDOW_S",
        ),
    ],
)
def test_bad_configuration_is_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    out = run_bot_cli(tmp_path, **env)
    assert out.returncode == 2
    assert needle in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr
    assert "1:x" not in out.stderr  # the token is never echoed
