"""The audit log and the ``livingphoto audit`` command (run as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from livingphoto.errors import PolicyRefusal
from moderation.config import ModerationSettings
from moderation.gate import ModerationRequest, Moderator
from moderation.requester import Requester

IMAGE = np.zeros((32, 32, 3), dtype=np.uint8)
ROOT = Path(__file__).resolve().parents[1]


class LowDetector:
    def score(self, image: NDArray[np.uint8]) -> float:
        return 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def populate(data_dir: Path, settings: ModerationSettings | None = None) -> None:
    with Moderator.open(
        settings or ModerationSettings(), data_dir, detector=LowDetector(), clock=Clock()
    ) as gate:
        alice = Requester("telegram", "42", "-100")
        gate.check_request(ModerationRequest(alice, "smile please", IMAGE, True))
        for prompt in (
            "take off her shirt, call me at 5551234567 or mail bob@example.com",
            "make him say he resigns @someone https://example.com/x",
        ):
            with pytest.raises(PolicyRefusal):
                gate.check_request(ModerationRequest(alice, prompt, IMAGE, True))
        gate.forget(Requester("discord", "7"))


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``livingphoto audit`` in this process (the subprocess tests cover the real entry point)."""
    from livingphoto.cli import main

    try:
        code = main(["audit", *args])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", "audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_audit_lists_recent_refusals_as_a_table_and_json(tmp_path: Path) -> None:
    populate(tmp_path)
    out = audit("--data-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["time", "(UTC)", "platform"]
    assert len(lines) == 3  # header + the two refusals, newest first
    assert "speech_impersonation" in lines[1] and "sexual" in lines[2]
    assert "smile please" not in out.stdout  # allowed prompts are never stored

    out = audit("--data-dir", str(tmp_path), "--json", "--limit", "1")
    assert out.returncode == 0, out.stderr
    [row] = json.loads(out.stdout)["refusals"]
    assert row["category"] == "speech_impersonation"
    assert row["rule"] == "say"
    assert row["user_id"] == "42" and row["platform"] == "telegram"
    assert "@someone" not in row["excerpt"] and "example.com" not in row["excerpt"]
    assert "[user]" in row["excerpt"] and "[link]" in row["excerpt"]


def test_excerpts_are_redacted_and_can_be_turned_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(tmp_path)
    _, out, _ = run_main(capsys, "--data-dir", str(tmp_path), "--json")
    excerpts = [r["excerpt"] for r in json.loads(out)["refusals"]]
    sexual = excerpts[1]
    assert "5551234567" not in sexual and "bob@example.com" not in sexual
    assert "[n]" in sexual and "[email]" in sexual

    other = tmp_path / "none"
    other.mkdir()
    populate(other, ModerationSettings(audit_excerpt_chars=0))
    _, out, _ = run_main(capsys, "--data-dir", str(other), "--json")
    assert all(r["excerpt"] == "" for r in json.loads(out)["refusals"])


def test_audit_lists_deletions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    populate(tmp_path)
    code, out, _ = run_main(capsys, "--data-dir", str(tmp_path), "--deletions")
    assert code == 0
    assert "forget" in out and "consent_records=0" in out
    assert " 7 " not in out  # the forgotten user's id is not shown


def test_data_dir_defaults_to_the_environment(tmp_path: Path) -> None:
    populate(tmp_path)
    out = audit("--json", env={"LIVINGPHOTO_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["refusals"]) == 2


def test_empty_data_dir_has_no_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--data-dir", str(tmp_path))
    assert code == 0
    assert out.strip() == f"no refusals recorded in {tmp_path}"
    code, out, _ = run_main(capsys, "--data-dir", str(tmp_path), "--json")
    assert json.loads(out) == {"refusals": []}


def test_nonexistent_data_dir_is_one_line_exit_2() -> None:
    out = audit("--data-dir", "/nonexistent/livingphoto-data")
    assert out.returncode == 2
    assert "does not exist" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "positive integer"),
        (["--limit", "many"], "positive integer"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_main(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_corrupt_audit_log_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "audit.sqlite3").write_bytes(b"garbage" * 1000)
    code, _, err = run_main(capsys, "--data-dir", str(tmp_path))
    assert code == 2
    assert "cannot read database" in err
    assert len(err.strip().splitlines()) == 1
