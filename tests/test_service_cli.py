"""``livingphoto service|worker|serve`` on the command line: start-up, bad options, shutdown."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
from servicekit import ServiceProcess, spawn_livingphoto


def _run(args: list[str], tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "livingphoto", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **env},
        timeout=60,
    )


def test_bad_service_and_worker_options_are_one_line_exit_2(tmp_path: Path) -> None:
    token = {"LIVINGPHOTO_SERVICE_TOKEN": "t" * 20}
    cases = [
        (["service", "--port", "0"], {}, "LIVINGPHOTO_SERVICE_TOKEN"),
        (["service", "--queue", "rabbit://x"], token, "queue must be"),
        (["service", "--port", "70000"], token, "--port"),
        (["service", "--backend", "nope"], token, "invalid choice"),
        (["worker", "--queue", "embedded"], token, "redis://"),
        (["worker", "--queue", "redis://127.0.0.1:abc/0"], token, "not a usable Redis URL"),
        (["service", "--queue", "redis://:pw@127.0.0.1:99999/0"], token, "not a usable Redis"),
        (["service", "--queue", "redis://[::1/0"], token, "not a usable Redis URL"),
        (["serve", "--queue", "redis://127.0.0.1:6379/0"], token, "embedded"),
    ]
    for args, env, expected in cases:
        out = _run(args, tmp_path, {"LIVINGPHOTO_SERVICE_TOKEN": "", **env})
        assert out.returncode == 2, (args, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (args, out.stderr)
        assert ":pw@" not in out.stderr


async def test_serve_without_bot_tokens_serves_the_api_and_stops_cleanly(tmp_path: Path) -> None:
    token = "serve-token-1234567890"
    env = {
        "LIVINGPHOTO_SERVICE_TOKEN": token,
        "LIVINGPHOTO_BACKEND": "sleep",
        "TELEGRAM_BOT_TOKEN": "",
        "DISCORD_BOT_TOKEN": "",
    }
    args = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d")]
    proc: ServiceProcess = spawn_livingphoto(args, tmp_path, env, token, tmp_path / "d", 30)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{proc.url}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{proc.url}/metrics", headers=proc.headers) as response:
                assert response.status == 200
                assert "livingphoto_queue_depth 0" in await response.text()
    finally:
        code = proc.stop()
    assert code == 0
    log = proc.log()
    assert f"listening on {proc.url}" in log
    assert token not in log and "Traceback" not in log


async def test_serve_starts_the_telegram_bot_against_its_own_service(tmp_path: Path) -> None:
    from emulators.telegram_api import TelegramEmulator

    token = "serve-token-abcdefghij"
    async with TelegramEmulator() as tg:
        env = {
            "LIVINGPHOTO_SERVICE_TOKEN": token,
            "LIVINGPHOTO_BACKEND": "sleep",
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.api_base_url,
            "TELEGRAM_FILE_BASE_URL": tg.file_base_url,
            "DISCORD_BOT_TOKEN": "",
        }
        args = ["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d")]
        proc = await asyncio.to_thread(
            spawn_livingphoto, args, tmp_path, env, token, tmp_path / "d", 30
        )
        try:
            async with asyncio.timeout(30):
                await tg.wait_for("getMe")
                await tg.wait_for("getUpdates")
            async with aiohttp.ClientSession() as http, http.get(f"{proc.url}/healthz") as r:
                assert r.status == 200
        finally:
            code = await asyncio.to_thread(proc.stop)
    assert code == 0, proc.log()
    assert tg.token not in proc.log() and token not in proc.log()
