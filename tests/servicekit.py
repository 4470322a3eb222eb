"""Run the real generation service in tests: in-process or as separate OS processes.

Used by the service, Telegram, Discord and deploy tests. Everything binds 127.0.0.1 port 0,
lives under the test's ``tmp_path`` and, with Redis, under a unique key prefix that is deleted
afterwards, so tests are safe under ``pytest -n 2``.

In-process (the usual way)::

    from servicekit import running_service, job_request, make_photo, submit, wait_for

    async def test_something(tmp_path):
        async with running_service(tmp_path, backend="sleep", sleep_seconds=0.2) as svc:
            async with svc.session() as http:            # aiohttp session with the token
                status, job, _ = await submit(http, svc, job_request(user_id="u1"), make_photo())
                done = await wait_for(http, svc, job["job_id"])    # polls until a final state
                clip = await (await http.get(svc.url + done["variations"][0]["url"])).read()

``running_service(tmp_path, backend="warp"|"sleep", queue="embedded"|"redis://…", *, token=…,
env={…}, **overrides)`` yields a ``RunningService`` with ``.url``, ``.token``, ``.data_dir``,
``.settings``, ``.headers``, ``.session()`` and ``.app``. ``overrides`` are field names of
``ServiceSettings`` / ``GenerationSettings`` / ``ModerationSettings`` / ``BotSettings``
(e.g. ``max_queue=2``, ``workers=2``, ``sleep_seconds=0.1``, ``retention_hours=0``,
``max_image_bytes=100_000``); ``env`` is applied first, as environment variables. With a
Redis queue, ``redis_prefix`` defaults to a fresh unique prefix (``svc.redis_prefix``); start
workers with ``start_worker_process`` or in-process with ``running_worker``.

Separate processes (for kill -9 tests)::

    proc = start_service_process(tmp_path, backend="sleep", env={"LIVINGPHOTO_SLEEP_SECONDS": "3"})
    ...; proc.kill()                                     # SIGKILL
    proc2 = start_service_process(tmp_path, token=proc.token, data_dir=proc.data_dir)
    worker = start_worker_process(tmp_path, queue=REDIS_URL, prefix=..., data_dir=...)

Each process writes its bound address to a ``--ready-file``; ``ServiceProcess.url`` is read
from it. ``stop()`` sends SIGTERM and waits; ``kill()`` sends SIGKILL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from PIL import Image

from generation.backends import make_backend
from generation.service.app import create_app
from generation.service.execute import JobRunner
from generation.service.media import MediaStore
from generation.service.redis_queue import RedisKeys, connect
from generation.service.worker import RedisWorker
from livingphoto.settings import Settings

REDIS_URL = os.environ.get("LIVINGPHOTO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FINAL_STATES = frozenset({"done", "failed", "refused", "cancelled"})
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RunningService:
    url: str
    token: str
    data_dir: Path
    settings: Settings
    app: web.Application | None = None
    redis_prefix: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session that sends the bearer token."""
        return aiohttp.ClientSession(headers=self.headers, **kwargs)


def build_settings(
    tmp_path: Path,
    backend: str = "sleep",
    queue: str = "embedded",
    *,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Settings for a test service: data under ``tmp_path/data``, a random token, loopback."""
    base = {
        "LIVINGPHOTO_SERVICE_TOKEN": token or secrets.token_urlsafe(24),
        "LIVINGPHOTO_DATA_DIR": str(tmp_path / "data"),
        "LIVINGPHOTO_BACKEND": backend,
        "LIVINGPHOTO_QUEUE": queue,
        "LIVINGPHOTO_HOST": "127.0.0.1",
        "LIVINGPHOTO_PORT": "0",
        "LIVINGPHOTO_REDIS_PREFIX": f"lptest:{secrets.token_hex(6)}",
    }
    base.update(env or {})
    settings = Settings.from_env(base, dotenv_path=tmp_path / "no.env")
    parts = {}
    for part in ("service", "generation", "moderation", "bot"):
        current = getattr(settings, part)
        names = {f.name for f in dataclasses.fields(current)}
        mine = {k: v for k, v in overrides.items() if k in names}
        parts[part] = dataclasses.replace(current, **mine) if mine else current
        for name in mine:
            overrides.pop(name)
    if overrides:
        raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
    return dataclasses.replace(settings, **parts)


@asynccontextmanager
async def running_service(
    tmp_path: Path,
    backend: str = "sleep",
    queue: str = "embedded",
    *,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> AsyncIterator[RunningService]:
    """Start the real app on 127.0.0.1 (free port) in this event loop; stop it afterwards."""
    settings = build_settings(tmp_path, backend, queue, token=token, env=env, **overrides)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield RunningService(
            url=f"http://{host}:{port}",
            token=settings.service.service_token,
            data_dir=settings.service.data_dir,
            settings=settings,
            app=app,
            redis_prefix=settings.service.redis_prefix if settings.service.uses_redis else "",
        )
    finally:
        await runner.cleanup()
        if settings.service.uses_redis:
            await delete_redis_prefix(settings.service.queue, settings.service.redis_prefix)


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[RedisWorker]:
    """An in-process Redis worker for ``settings`` (same data dir and prefix as the service)."""
    service = settings.service
    backend = make_backend(
        settings.generation.backend,
        settings.generation.model,
        settings.generation.backend_options(),
    )
    runner = JobRunner(backend, MediaStore(service.data_dir))
    await asyncio.to_thread(runner.setup)
    stop = asyncio.Event()
    async with connect(service.queue) as client:
        worker = RedisWorker(
            client, RedisKeys(service.redis_prefix), runner, service.lease_s, service.max_deliveries
        )
        task = asyncio.create_task(worker.run(stop))
        try:
            yield worker
        finally:
            stop.set()
            await task


async def delete_redis_prefix(url: str, prefix: str) -> None:
    async with connect(url) as client:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)


# -- requests ------------------------------------------------------------------------------


def make_photo(size: int = 96, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A small valid photo: a smooth gradient with a darker oval "face"."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([x * 200 // size + 30, y * 180 // size + 40, (x + y) * 100 // size + 60], -1)
    oval = ((x - size / 2) / (size / 4)) ** 2 + ((y - size / 2) / (size / 3)) ** 2 < 1
    base[oval] = base[oval] * 3 // 4
    noise = rng.integers(0, 8, size=base.shape)
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def job_request(
    user_id: str = "u1",
    platform: str = "test",
    prompt: str = "subtle blink, gentle breathing",
    **fields: Any,
) -> dict[str, Any]:
    """A valid ``request`` JSON with consent attested and small, fast render options."""
    request: dict[str, Any] = {
        "prompt": prompt,
        "variations": 1,
        "seconds": 1.0,
        "fps": 8,
        "size": 128,
        "seed": 7,
        "requester": {"platform": platform, "user_id": user_id, "chat_id": "c1"},
        "consent": {"attested": True, "at": "2026-01-01T00:00:00Z"},
    }
    request.update(fields)
    return request


def job_form(request: Any, image: bytes | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if image is not None:
        form.add_field("image", image, filename="photo.png", content_type="image/png")
    text = request if isinstance(request, str) else json.dumps(request)
    form.add_field("request", text, content_type="application/json")
    return form


async def submit(
    http: aiohttp.ClientSession,
    svc: RunningService | ServiceProcess,
    request: Any,
    image: bytes | None = None,
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    """POST /v1/jobs; returns (status, JSON body, headers)."""
    async with http.post(f"{svc.url}/v1/jobs", data=job_form(request, image)) as response:
        return response.status, await response.json(), response.headers


async def get_job(
    http: aiohttp.ClientSession, svc: RunningService | ServiceProcess, job_id: str
) -> dict[str, Any]:
    async with http.get(f"{svc.url}/v1/jobs/{job_id}") as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def wait_for(
    http: aiohttp.ClientSession,
    svc: RunningService | ServiceProcess,
    job_id: str,
    states: frozenset[str] = FINAL_STATES,
    within_s: float = 30.0,
) -> dict[str, Any]:
    """Poll the job until its state is in ``states``; ``TimeoutError`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        job = await get_job(http, svc, job_id)
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['state']} after {within_s} s")
        await asyncio.sleep(0.05)


async def sse_events(
    http: aiohttp.ClientSession,
    svc: RunningService | ServiceProcess,
    job_id: str,
    within_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Read ``/v1/jobs/{id}/events`` to its end; returns the job objects sent."""
    stream = await sse_stream(http, svc, job_id, within_s)
    return [data for event, data in stream if event != "take"]


async def sse_stream(
    http: aiohttp.ClientSession,
    svc: RunningService | ServiceProcess,
    job_id: str,
    within_s: float = 30.0,
) -> list[tuple[str, dict[str, Any]]]:
    """Read ``/v1/jobs/{id}/events`` to its end; returns every ``(event, data)`` in order."""
    events: list[tuple[str, dict[str, Any]]] = []
    client_timeout = aiohttp.ClientTimeout(total=within_s)
    async with http.get(f"{svc.url}/v1/jobs/{job_id}/events", timeout=client_timeout) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name = "message"
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
            elif not line:
                name = "message"
    return events


def files_under(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


# -- separate processes --------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """A ``livingphoto service`` or ``worker`` process started by a test."""

    proc: subprocess.Popen[bytes]
    token: str
    data_dir: Path
    url: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def session(self, **kwargs: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers=self.headers, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, like a crash."""
        with suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def spawn_livingphoto(
    args: list[str],
    tmp_path: Path,
    env: Mapping[str, str],
    token: str,
    data_dir: Path,
    timeout: float,
) -> ServiceProcess:
    name = f"{args[0]}-{secrets.token_hex(4)}"
    ready = tmp_path / f"{name}.ready"
    log_path = tmp_path / f"{name}.log"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livingphoto", *args, "--ready-file", str(ready)],
            cwd=tmp_path,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    process = ServiceProcess(proc, token, data_dir, log_path=log_path)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{args[0]} exited with {proc.returncode}:\n{process.log()}")
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{args[0]} not ready after {timeout} s:\n{process.log()}")
        time.sleep(0.05)
    process.info = json.loads(ready.read_text())
    process.url = str(process.info.get("url", ""))
    return process


def start_service_process(
    tmp_path: Path,
    backend: str = "sleep",
    queue: str = "embedded",
    *,
    token: str | None = None,
    data_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """``python -m livingphoto service --port 0 …``; returns once it is listening."""
    token = token or secrets.token_urlsafe(24)
    data_dir = data_dir or tmp_path / "data"
    process_env = {
        "LIVINGPHOTO_SERVICE_TOKEN": token,
        "LIVINGPHOTO_BACKEND": backend,
        **(env or {}),
    }
    args = [
        "service",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--queue",
        queue,
    ]
    return spawn_livingphoto(args, tmp_path, process_env, token, data_dir, timeout)


def start_worker_process(
    tmp_path: Path,
    queue: str,
    prefix: str,
    data_dir: Path,
    backend: str = "sleep",
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """``python -m livingphoto worker --queue …``; returns once it has joined the group."""
    process_env = {
        "LIVINGPHOTO_BACKEND": backend,
        "LIVINGPHOTO_REDIS_PREFIX": prefix,
        **(env or {}),
    }
    args = ["worker", "--queue", queue, "--data-dir", str(data_dir)]
    return spawn_livingphoto(args, tmp_path, process_env, "", data_dir, timeout)
