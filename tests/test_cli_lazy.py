"""Start-up pays only for what the command uses: ``animate`` never imports the service's or the
bots' packages, and the subcommand table of ``livingphoto.cli`` matches what modules register."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livingphoto.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from livingphoto.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
# bot.config is plain settings (livingphoto.settings holds every section): not the bots.
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {"aiohttp", "redis", "discord", "telegram"}
    or name.startswith("generation.service")
    or (name.startswith("bot.") and name != "bot.config")
)
print(json.dumps({"code": code, "heavy": heavy}))
"""


def probe(args: list[str], tmp_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"LIVINGPHOTO_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["animate", "--help"],
        ["animate", "no-such-photo.jpg", "subtle blink", "--consent"],
    ],
)
def test_animate_and_help_never_import_the_service_or_bots(args: list[str], tmp_path: Path) -> None:
    result = probe(args, tmp_path)
    assert result["heavy"] == [], f"`livingphoto {' '.join(args)}` imported {result['heavy']}"
    assert result["code"] == (2 if "no-such-photo.jpg" in args else 0)


def test_a_real_animate_run_never_imports_the_service_or_bots(tmp_path: Path) -> None:
    photo = ROOT / "examples" / "astronaut.jpg"
    args = ["animate", str(photo), "subtle blink", "--consent", "--variations", "1"]
    args += ["--seconds", "1", "--fps", "8", "--size", "128", "--out", str(tmp_path / "out")]
    result = probe(args, tmp_path)
    assert result["code"] == 0
    assert result["heavy"] == []
    assert (tmp_path / "out" / "variation-1.mp4").is_file()


def test_service_command_does_import_its_own_module(tmp_path: Path) -> None:
    """The probe sees imports when they happen (so the checks above are not vacuous)."""
    result = probe(["service", "--help"], tmp_path)
    assert result["code"] == 0
    assert "generation.service.cli" in result["heavy"]  # type: ignore[operator]


def test_subcommand_table_matches_what_each_module_registers() -> None:
    for entry in SUBCOMMANDS:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(entry.module).register(sub)
        helps = {action.dest: action.help for action in sub._choices_actions}
        assert helps == entry.commands, entry.module


def test_placeholder_parsers_list_every_command_in_help() -> None:
    text = " ".join(build_parser(["--help"]).format_help().split())  # argparse wraps lines
    for entry in SUBCOMMANDS:
        for name, help_text in entry.commands.items():
            assert name in text and help_text in text


def test_full_parser_parses_every_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["service", "--port", "0"]).command == "service"
    assert parser.parse_args(["bot", "telegram"]).platform == "telegram"


def test_the_command_runs_numpy_with_one_blas_thread() -> None:
    """numpy's OpenBLAS threads would spin on every core after each call: the entry point asks
    for one before numpy is imported, unless the operator chose otherwise."""
    probe = (
        "import os, sys\n"
        "sys.argv = ['livingphoto', '--version']\n"
        "from livingphoto.cli import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert ran.stdout.split()[-2:] == ["1", "False"]
    env["OPENBLAS_NUM_THREADS"] = "4"
    ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert ran.stdout.split()[-2:] == ["4", "False"]
