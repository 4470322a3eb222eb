"""The compose deployment, run as separate OS processes on loopback: one job end to end.

The commands and environment come from ``deploy/compose.yaml`` (the ``cpu`` profile) and the env
example, with only what a host needs changed: ``redis:6379`` becomes the local Redis (under a
unique key prefix), ``/data`` a temporary directory shared by the service and both workers,
``service:8750`` the service's real address (bound to a free port), the Telegram API the local
emulator. A user sends a photo to the real Telegram bot process; the job goes bot → service →
Redis stream → one of two worker processes → clips back through the shared directory → the
bot's ``sendAnimation``s. Then the logs of every process are checked: JSON lines carrying the
job id, and no token anywhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import yaml
from dotenv import dotenv_values
from emulators.telegram_api import Call, TelegramEmulator
from images import astronaut_bytes

from bot import texts
from generation.service.redis_queue import GROUP, RedisKeys

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
REDIS_URL = os.environ.get("LIVINGPHOTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
COMPOSE_REDIS = "redis://redis:6379/0"
COMPOSE_SERVICE_URL = "http://service:8750"
TAKES = 2
START_TIMEOUT_S = 30.0
STEP_TIMEOUT_S = 40.0


@dataclass
class Process:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def compose_services() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services: dict[str, Any] = doc["services"]
    return services


def localize(value: str, local: Mapping[str, str]) -> str:
    """A compose value as it must read on this host."""
    if value in local:
        return local[value]
    for compose_value, host_value in local.items():
        if value.startswith(compose_value + "/"):
            return host_value + value[len(compose_value) :]
    return value


def compose_command(service: dict[str, Any], local: Mapping[str, str]) -> list[str]:
    command: list[str] = service["command"]
    argv = [localize(arg, local) for arg in command]
    if "--port" in argv:
        argv[argv.index("--port") + 1] = "0"  # any free port instead of the published 8750
    if "--host" in argv:
        argv[argv.index("--host") + 1] = "127.0.0.1"
    return argv


def compose_env(
    service: dict[str, Any], local: Mapping[str, str], secrets_: Mapping[str, str]
) -> dict[str, str]:
    """The container's environment: env file (with the secrets filled in), then ``environment``."""
    env = {k: v or "" for k, v in dotenv_values(DEPLOY / "livingphoto.env.example").items()}
    env.update(secrets_)
    env.update({k: localize(str(v), local) for k, v in (service.get("environment") or {}).items()})
    env["LIVINGPHOTO_HOST"] = "127.0.0.1"
    env["LIVINGPHOTO_PORT"] = "0"
    return env


def base_environ() -> dict[str, str]:
    """This process's environment without any livingphoto/bot setting (the test sets them)."""
    prefixes = ("LIVINGPHOTO_", "TELEGRAM_", "DISCORD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update({"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


@asynccontextmanager
async def started(
    name: str, argv: list[str], env: dict[str, str], cwd: Path
) -> AsyncIterator[Process]:
    log = cwd / f"{name}.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "livingphoto",
            *argv,
            cwd=cwd,
            env={**base_environ(), **env},
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    process = Process(name, proc, log)
    try:
        yield process
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def ready_file(path: Path, process: Process) -> dict[str, Any]:
    """The JSON a ``--ready-file`` process writes once it serves; fail early if it died."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.proc.returncode is not None:
            raise AssertionError(
                f"{process.name} exited {process.proc.returncode}: {process.output()[-2000:]}"
            )
        text = await asyncio.to_thread(_read_if_present, path)
        if text:
            with suppress(json.JSONDecodeError):
                content: dict[str, Any] = json.loads(text)
                return content
        await asyncio.sleep(0.05)
    raise AssertionError(
        f"{process.name} not ready after {START_TIMEOUT_S} s: {process.output()[-2000:]}"
    )


def _read_if_present(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


async def delete_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def image_healthcheck() -> list[str]:
    """The exec-form command of the CPU image's HEALTHCHECK."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK ")]
    command: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return command


async def probe(argv: list[str], env: Mapping[str, str]) -> int:
    python = [sys.executable] if argv[0] == "python" else [argv[0]]
    proc = await asyncio.create_subprocess_exec(*python, *argv[1:], env={**base_environ(), **env})
    return await asyncio.wait_for(proc.wait(), timeout=20)


async def assert_healthchecks_pass(service: dict[str, Any], port: str) -> None:
    """The image's and compose's health probes succeed against the running service (and the
    image's fails where nothing listens, so it is not a probe that always passes)."""
    assert await probe(image_healthcheck(), {"LIVINGPHOTO_PORT": port}) == 0
    compose_test = [arg.replace(":8750/", f":{port}/") for arg in service["healthcheck"]["test"]]
    assert compose_test[0] == "CMD"
    assert await probe(compose_test[1:], {}) == 0
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unused = str(closed.getsockname()[1])
    assert await probe(image_healthcheck(), {"LIVINGPHOTO_PORT": unused}) != 0


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


async def test_service_two_workers_and_telegram_bot_run_one_job_like_compose(
    tmp_path: Path,
) -> None:
    services = compose_services()
    prefix = f"lp-deploy-{uuid.uuid4().hex[:10]}"
    shared = tmp_path / "data"  # the livingphoto-data volume
    bot_state = tmp_path / "bot-state"  # the bot-state volume
    service_token = secrets.token_urlsafe(24)
    try:
        async with TelegramEmulator() as tg:
            local = {COMPOSE_REDIS: REDIS_URL, "/data": str(shared), "0.0.0.0": "127.0.0.1"}
            secret_env = {
                "LIVINGPHOTO_SERVICE_TOKEN": service_token,
                "LIVINGPHOTO_REDIS_PREFIX": prefix,
            }
            env = compose_env(services["service"], local, secret_env)
            service_ready = tmp_path / "service.ready"
            argv = [
                *compose_command(services["service"], local),
                "--ready-file",
                str(service_ready),
            ]
            async with started("service", argv, env, tmp_path) as service:
                url = (await ready_file(service_ready, service))["url"]
                assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
                local[COMPOSE_SERVICE_URL] = url
                await assert_healthchecks_pass(services["service"], url.rsplit(":", 1)[1])

                async with (
                    started_worker("worker-1", services, local, secret_env, tmp_path) as w1,
                    started_worker("worker-2", services, local, secret_env, tmp_path) as w2,
                ):
                    consumers = {
                        (await ready_file(tmp_path / "worker-1.ready", w1))["consumer"],
                        (await ready_file(tmp_path / "worker-2.ready", w2))["consumer"],
                    }
                    assert len(consumers) == 2

                    bot_local = {**local, "/data": str(bot_state)}
                    bot_env = compose_env(
                        services["telegram-bot"],
                        bot_local,
                        {
                            **secret_env,
                            "TELEGRAM_BOT_TOKEN": tg.token,
                            "TELEGRAM_API_BASE_URL": tg.api_base_url,
                            "TELEGRAM_FILE_BASE_URL": tg.file_base_url,
                            # small clips keep the CPU warp backend quick
                            "LIVINGPHOTO_BOT_VARIATIONS": str(TAKES),
                            "LIVINGPHOTO_BOT_SECONDS": "1",
                            "LIVINGPHOTO_BOT_CLIP_SIZE": "128",
                        },
                    )
                    bot_argv = compose_command(services["telegram-bot"], bot_local)
                    async with started("telegram-bot", bot_argv, bot_env, tmp_path) as bot:
                        await wait_or_die(tg.wait_for("getUpdates"), bot)
                        chat = tg.private_chat(tg.alice)
                        tg.send_photo(
                            tg.alice, chat, astronaut_bytes(), caption="/animate subtle blink"
                        )
                        question = await wait_or_die(
                            tg.wait_for("sendMessage", where=lambda c: "please confirm" in c.text),
                            bot,
                        )
                        tg.press(
                            tg.alice, question[-1].result, question[-1].buttons()[texts.CONSENT_YES]
                        )
                        clips = await wait_or_die(
                            tg.wait_for(
                                "sendAnimation", count=TAKES, where=lambda c: c.chat_id() == chat.id
                            ),
                            bot,
                        )
                        job_ids = await assert_job_went_through_redis(
                            prefix, consumers, clips, shared
                        )
                    outputs = {p.name: p.output() for p in (service, w1, w2, bot)}
        assert_logs(outputs, job_ids, [service_token, tg.token])
    finally:
        await delete_prefix(prefix)


@asynccontextmanager
async def started_worker(
    name: str,
    services: dict[str, Any],
    local: Mapping[str, str],
    secret_env: Mapping[str, str],
    cwd: Path,
) -> AsyncIterator[Process]:
    worker = services["worker-cpu"]
    argv = [*compose_command(worker, local), "--ready-file", str(cwd / f"{name}.ready")]
    async with started(name, argv, compose_env(worker, local, secret_env), cwd) as process:
        yield process


async def wait_or_die(awaitable: Any, process: Process) -> list[Call]:
    """Wait for the emulator (at most ``STEP_TIMEOUT_S``), but fail at once, with the process's
    output, if ``process`` exits first."""
    waiter = asyncio.ensure_future(awaitable)
    died = asyncio.ensure_future(process.proc.wait())
    done, _ = await asyncio.wait(
        {waiter, died}, timeout=STEP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
    )
    if waiter in done:
        died.cancel()
        result: list[Call] = waiter.result()
        return result
    waiter.cancel()
    died.cancel()
    raise AssertionError(
        f"{process.name} (exit {process.proc.returncode}): {process.output()[-3000:]}"
    )


async def assert_job_went_through_redis(
    prefix: str, consumers: set[str], clips: list[Call], shared: Path
) -> set[str]:
    """The stream and consumer group KEDA watches exist and a worker read the job through them,
    both workers are live, the job's final marker is set, and the clips the bot sent are the
    ones a worker wrote to the shared directory."""
    keys = RedisKeys(prefix)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        groups = await client.xinfo_groups(keys.jobs)
        (group,) = [g for g in groups if g["name"] == GROUP]
        assert group["pending"] == 0, "the job must be acknowledged"
        live = set(await client.zrange(keys.workers, 0, -1))
        assert live == consumers, "both workers keep a heartbeat the service counts"
        members = {c["name"] for c in await client.xinfo_consumers(keys.jobs, GROUP)}
        assert members and members <= consumers, "the job was read through the group by a worker"
        finals = [key async for key in client.scan_iter(match=f"{prefix}:job:*:final")]
        job_ids = {key[len(f"{prefix}:job:") : -len(":final")] for key in finals}
        assert len(job_ids) == 1, f"one job expected, found {job_ids}"
        (job_id,) = job_ids
        assert await client.exists(keys.final(job_id))
    finally:
        await client.aclose()
    assert len(clips) == TAKES and all(c.files for c in clips)
    on_disk = {p.read_bytes() for p in (shared / "media" / job_id).rglob("*.mp4")}
    for clip in clips:
        (data,) = clip.files.values()
        assert data[4:8] == b"ftyp"
        assert data in on_disk, "the bot must deliver the clips the worker wrote to the shared dir"
    return job_ids


def assert_logs(outputs: dict[str, str], job_ids: set[str], tokens: list[str]) -> None:
    for name, text in outputs.items():
        for token in tokens:
            assert token not in text, f"{name} logged a token"
        assert "Traceback" not in text, f"{name}: {text[-2000:]}"
    (job_id,) = job_ids
    service_lines = json_lines(outputs["service"])
    assert service_lines, "the service logs JSON lines (LIVINGPHOTO_LOG_FORMAT=json in compose)"
    assert any(line.get("job_id") == job_id for line in service_lines)
    worker_lines = [line for name in ("worker-1", "worker-2") for line in json_lines(outputs[name])]
    assert any(line.get("job_id") == job_id for line in worker_lines), "a worker logs the job id"
