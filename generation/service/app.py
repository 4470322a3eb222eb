"""The aiohttp application of the generation service (DESIGN.md section 3).

``create_app(settings)`` wires typed ``AppKey``s and ``cleanup_ctx`` lifecycles: job store ->
moderation guard -> queue (embedded worker or Redis) -> scheduler -> retention sweeper. Every
route but ``/healthz`` needs the bearer token; every error is a JSON body
``{"error": ..., "message": ...}`` with the status of ``livingphoto.errors``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from aiohttp import BodyPartReader, web

from generation.backends import make_backend
from generation.service import inspect_route
from generation.service.embedded_queue import EmbeddedQueue
from generation.service.errors import Gone, NotFound, PayloadTooLarge, Unauthorized, error_code
from generation.service.execute import JobRunner
from generation.service.guard import Guard
from generation.service.jobs import JobState, is_job_id
from generation.service.media import MediaStore
from generation.service.metrics import CONTENT_TYPE, Metrics
from generation.service.multipart import read_part
from generation.service.openapi import openapi_document
from generation.service.privacy import Privacy
from generation.service.queue import JobQueue
from generation.service.redis_queue import RedisQueue
from generation.service.scheduler import Scheduler
from generation.service.store import JobRecord, JobStore
from generation.service.submission import make_requester, parse_submission
from generation.service.tasks import reraise_if_cancelling, stop_tasks
from livingphoto.errors import LivingPhotoError, PolicyRefusal, RateLimited, UsageError
from livingphoto.settings import Settings
from moderation.requester import Requester

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", JobStore)
MEDIA = web.AppKey("media", MediaStore)
GUARD = web.AppKey("guard", Guard)
QUEUE = web.AppKey("queue", JobQueue)
METRICS = web.AppKey("metrics", Metrics)
SCHEDULER = web.AppKey("scheduler", Scheduler)
PRIVACY = web.AppKey("privacy", Privacy)

MAX_REQUEST_JSON_BYTES = 64 * 1024
SSE_KEEPALIVE_S = 15.0
_CLIP_TYPES = {".mp4": "video/mp4", ".gif": "image/gif", ".webp": "image/webp"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings) -> web.Application:
    """The service application; resources open on start-up and close on clean-up."""
    if not settings.service.service_token:
        raise UsageError("LIVINGPHOTO_SERVICE_TOKEN must be set (the bearer token clients send)")
    settings.service.check_queue()
    app = web.Application(
        middlewares=[_errors, _authenticate],
        client_max_size=settings.service.max_upload_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[MEDIA] = MediaStore(settings.service.data_dir)
    inspect_route.register(app, settings)  # POST /v1/inspect; its face model opens first
    app.cleanup_ctx.extend([_store_ctx, _guard_ctx, _queue_ctx, _scheduler_ctx, _sweeper_ctx])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_post("/v1/jobs", submit_job)
    app.router.add_get("/v1/jobs/{job_id}", get_job)
    app.router.add_delete("/v1/jobs/{job_id}", cancel_job)
    app.router.add_get("/v1/jobs/{job_id}/events", job_events)
    app.router.add_get("/v1/jobs/{job_id}/variations/{index}", get_variation)
    app.router.add_delete("/v1/users/{platform}/{user_id}", forget_user)
    app.router.add_get("/v1/users/{platform}/{user_id}/consent", get_consent)
    app.router.add_put("/v1/users/{platform}/{user_id}/consent", put_consent)
    app.router.add_delete("/v1/users/{platform}/{user_id}/consent", revoke_consent)
    return app


# -- lifecycles ------------------------------------------------------------------------------


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS].service
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with JobStore.open(settings.data_dir / "jobs.sqlite3") as store:
        app[STORE] = store
        yield


async def _guard_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with Guard.open(settings.moderation, settings.service.data_dir) as guard:
        app[GUARD] = guard
        yield


async def _queue_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with AsyncExitStack() as stack:
        queue: JobQueue
        if settings.service.uses_redis:
            queue = await stack.enter_async_context(
                RedisQueue.open(
                    settings.service.queue,
                    settings.service.redis_prefix,
                    settings.service.lease_s,
                )
            )
        else:
            backend = make_backend(
                settings.generation.backend,
                settings.generation.model,
                settings.generation.backend_options(),
            )
            runner = JobRunner(backend, app[MEDIA])
            queue = await stack.enter_async_context(
                EmbeddedQueue.open(runner, settings.service.workers)
            )
        app[QUEUE] = queue
        yield


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with Scheduler.open(
        app[STORE],
        app[MEDIA],
        app[QUEUE],
        app[GUARD],
        settings.service,
        settings.moderation,
        app[METRICS],
        app[inspect_route.SUBJECTS],
    ) as scheduler:
        app[SCHEDULER] = scheduler
        app[inspect_route.PRECHECKS] = scheduler.prechecks
        app[PRIVACY] = Privacy(scheduler, settings.service.retention_hours)
        yield


async def _sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(
        app[PRIVACY].run_sweeper(app[SETTINGS].service.retention_sweep_s), name="retention"
    )
    yield
    await stop_tasks([task])


# -- middlewares -----------------------------------------------------------------------------


def error_response(status: int, error: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "message": message, **extra}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PayloadTooLarge as error:
        return await _refuse_body(request, error)
    except LivingPhotoError as error:
        return _living_error(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = error.reason.lower().replace(" ", "_")
        response = error_response(error.status, code, error.reason.lower())
        if error.status == 413:
            response.force_close()
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        reraise_if_cancelling()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error")


def _living_error(error: LivingPhotoError) -> web.Response:
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(error, PolicyRefusal):
        extra = {"category": error.category}
        if error.suggestion:
            extra["suggestion"] = error.suggestion
    if isinstance(error, RateLimited):
        retry = max(1, math.ceil(error.retry_after_s))
        headers["Retry-After"] = str(retry)
        extra = {"retry_after_s": retry}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    status = error.http_status if 400 <= error.http_status < 600 else 500
    response = error_response(status, error_code(error), str(error), **extra)
    response.headers.update(headers)
    return response


async def _refuse_body(request: web.Request, error: PayloadTooLarge) -> web.Response:
    """Answer 413 and close the connection instead of reading the rest of the body."""
    response = _living_error(error)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.protocol is not None:
        request.protocol.force_close()
    return response


@web.middleware
async def _authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token on every route but ``/healthz`` (constant-time comparison)."""
    if request.path != "/healthz":
        expected = request.app[SETTINGS].service.service_token.encode()
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized("missing or wrong bearer token")
    return await handler(request)


# -- routes ----------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """Liveness: always 200 while the process serves. ``status`` is ``degraded`` while the
    queue's transport (Redis) does not answer: jobs are still accepted and sent when it is back,
    so restarting the service would not help."""
    queue = request.app[QUEUE].health() if QUEUE in request.app else None
    body: dict[str, Any] = {"status": "ok" if queue is None or queue.up else "degraded"}
    if queue is not None:
        body["queue"] = {
            "backend": queue.backend,
            "up": queue.up,
            "down_for_s": queue.down_for_s,
            "outages": queue.outages,
            "resets": queue.resets,
            "resent": queue.resent,
        }
    return web.json_response(body)


async def metrics(request: web.Request) -> web.Response:
    store = request.app[STORE]
    text = request.app[METRICS].render(
        store.count_waiting(), store.counts_by_state(), request.app[QUEUE].health()
    )
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def submit_job(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    image, raw_request = await _read_job_parts(
        request, settings.service.max_upload_bytes, settings.moderation.max_image_bytes
    )
    if raw_request is None:
        raise UsageError("missing the multipart part 'request' (JSON)")
    submission = parse_submission(raw_request)
    scheduler = request.app[SCHEDULER]
    accepted = await scheduler.submit(submission, image)
    return web.json_response(scheduler.view(accepted.job), status=202)


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    return web.json_response(request.app[SCHEDULER].view(job))


async def cancel_job(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    job = await scheduler.cancel(_job(request))
    current = request.app[STORE].get(job.id) or job
    status = 202 if not current.state.final else 200
    return web.json_response(scheduler.view(current), status=status)


async def job_events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events: ``event: job`` with the job object on every change, until final;
    before it, ``event: take`` with ``{job_id, index, url, scores}`` for each take the moment it
    becomes downloadable while the job runs, and for any not yet announced when it is done (once
    per take, always before the job event that lists it)."""
    job = _job(request)
    scheduler = request.app[SCHEDULER]
    store = request.app[STORE]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    try:
        await _stream_job(response, job.id, scheduler, store)
    except ConnectionResetError:  # the client left (a bot that has every take already)
        log.debug("event stream closed by the client", extra={"job_id": job.id})
        return response
    await response.write_eof()
    return response


async def _stream_job(
    response: web.StreamResponse, job_id: str, scheduler: Scheduler, store: JobStore
) -> None:
    """Write the job's events until a final state (see ``job_events``)."""
    with scheduler.watch(job_id) as changed:
        last: dict[str, Any] | None = None
        sent_takes: set[int] = set()
        while True:
            current = store.get(job_id)
            if current is None:
                gone = {"job_id": job_id, "state": "deleted"}
                await response.write(f"event: deleted\ndata: {json.dumps(gone)}\n\n".encode())
                break
            view = scheduler.view(current)
            if current.state in (JobState.RUNNING, JobState.DONE):
                for take in view["variations"]:
                    if take["index"] not in sent_takes:
                        sent_takes.add(take["index"])
                        await response.write(_take_event(job_id, take))
            if view != last:
                await response.write(f"event: job\ndata: {json.dumps(view)}\n\n".encode())
                last = view
            if current.state.final:
                break
            try:
                await asyncio.wait_for(changed.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")


def _take_event(job_id: str, take: dict[str, Any]) -> bytes:
    data = {"job_id": job_id, "index": take["index"], "url": take["url"], "scores": take["scores"]}
    return f"event: take\ndata: {json.dumps(data)}\n\n".encode()


async def get_variation(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    raw_index = request.match_info["index"]
    if not raw_index.isdigit() or not 1 <= int(raw_index) <= 64:
        raise NotFound("no such variation")
    if job.media_deleted:
        raise Gone("this job's media was deleted")
    index = int(raw_index)
    take = request.app[SCHEDULER].take(job.id, index)
    if job.state is JobState.RUNNING and take is not None:
        stored = take.path  # a finished take of a running job (progressive delivery)
    elif job.state is not JobState.DONE:
        raise NotFound(f"the job is {job.state.value}: no clips to download")
    else:
        match = [v for v in request.app[STORE].variations(job.id) if v.index == index]
        if not match:
            raise NotFound("no such variation")
        stored = match[0].path
    path = request.app[MEDIA].resolve(stored)
    if not path.is_file():
        raise Gone("this clip was deleted")
    content_type = _CLIP_TYPES.get(path.suffix, "application/octet-stream")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'inline; filename="{job.id}-{index}{path.suffix}"',
        },
    )


async def forget_user(request: web.Request) -> web.Response:
    report = await request.app[PRIVACY].forget(_requester(request))
    return web.json_response(report)


async def get_consent(request: web.Request) -> web.Response:
    guard = request.app[GUARD]
    status = await asyncio.to_thread(guard.consent_status, _requester(request))
    return web.json_response(status)


async def put_consent(request: web.Request) -> web.Response:
    """Record a consent attestation: body ``{wording_version?, scope?, chat_id?, language?}``
    (optional; ``language``: the ISO 639-1 code of the wording the user read, default "en")."""
    body = await request.read() if request.can_read_body else b""
    fields: dict[str, Any] = {}
    if body.strip():
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UsageError("body is not valid JSON") from None
        if not isinstance(data, dict):
            raise UsageError("body must be a JSON object")
        unknown = sorted(set(data) - {"wording_version", "scope", "chat_id", "language"})
        if unknown:
            raise UsageError(f"unknown field: {', '.join(unknown)}")
        fields = data
    wording = fields.get("wording_version") or ""
    scope = fields.get("scope") or "attested"
    language = fields.get("language") or "en"
    if not all(isinstance(value, str) for value in (wording, scope, language)):
        raise UsageError("wording_version, scope and language must be strings")
    requester = _requester(request, fields.get("chat_id") or "")
    guard = request.app[GUARD]
    status = await asyncio.to_thread(guard.record_consent, requester, wording, scope, language)
    return web.json_response(status)


async def revoke_consent(request: web.Request) -> web.Response:
    report = await request.app[PRIVACY].revoke(_requester(request))
    return web.json_response(report)


# -- helpers ---------------------------------------------------------------------------------


def _job(request: web.Request) -> JobRecord:
    job_id = request.match_info["job_id"]
    if not is_job_id(job_id):
        raise NotFound("no such job")
    job = request.app[STORE].get(job_id)
    if job is None:
        raise NotFound("no such job")
    return job


def _requester(request: web.Request, chat_id: object = "") -> Requester:
    return make_requester(request.match_info["platform"], request.match_info["user_id"], chat_id)


async def _read_job_parts(
    request: web.Request, max_body: int, max_image: int
) -> tuple[bytes | None, bytes | None]:
    """The ``image`` and ``request`` parts, read with limits (413 past them, early)."""
    length = request.content_length
    if length is not None and length > max_body:
        raise PayloadTooLarge(f"request body too large: the limit is {max_body // 2**20} MB")
    if request.content_type != "multipart/form-data":
        raise UsageError("send multipart/form-data with the parts 'image' and 'request'")
    image: bytes | None = None
    raw: bytes | None = None
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise UsageError("nested multipart bodies are not accepted")
            if part.name == "image":
                if image is not None:
                    raise UsageError("more than one 'image' part")
                image = await read_part(part, max_image, "photo")
            elif part.name == "request":
                if raw is not None:
                    raise UsageError("more than one 'request' part")
                raw = await read_part(part, MAX_REQUEST_JSON_BYTES, "request JSON")
            else:
                raise UsageError(f"unexpected multipart part {part.name!r}")
    except (ValueError, AssertionError, RuntimeError, LookupError):
        raise UsageError("malformed multipart body") from None
    if image is not None and not image:
        raise UsageError("the photo is empty (0 bytes)")
    return image, raw
