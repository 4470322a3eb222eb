"""A small stand-in of the generation service for the bots' "look first" flow.

It speaks the service's v1 contract where the bots need it to decide what to ask:
``POST /v1/inspect`` (the subject of a photo: ``{"subject": {"kind", "faces", "chosen"},
"warnings"}``), the consent ledger (``GET/PUT/DELETE /v1/users/{platform}/{user}/consent``, with
the ``language`` of the wording), ``POST /v1/jobs`` (403 ``consent_required`` only when the photo
shows a human face and no consent is on record; 202 otherwise) and a job that stays queued
(``GET /v1/jobs/{id}`` and its event stream). What each photo shows is told by the test
(``show(photo_bytes, kind, faces)``); every inspection and job request is recorded.

Usage::

    async with InspectingService() as svc:
        svc.show(dog_jpeg, "animal")
        svc.show(pair_jpeg, "face", [(10, 20, 50, 60), (120, 22, 48, 58)])
        ...  # point the bot at svc.url with svc.token
        assert svc.jobs[-1]["face"] == 1
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import BodyPartReader, web

JSON = dict[str, Any]
Box = tuple[int, int, int, int]


class InspectingService:
    """Start with ``async with`` (binds 127.0.0.1 on a free port)."""

    def __init__(self) -> None:
        self.token = "stub-" + secrets.token_hex(8)
        self.inspections: list[str] = []  # sha256 of every inspected photo
        self.jobs: list[JSON] = []  # every accepted job request (the ``request`` JSON)
        self.refused: list[JSON] = []  # job requests answered 403
        self.consents: dict[tuple[str, str], JSON] = {}  # (platform, user) -> record
        self._subjects: dict[str, JSON] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.url = ""

    def show(self, photo: bytes, kind: str, faces: Sequence[Box] = ()) -> None:
        """What ``photo`` shows: kind "face" | "animal" | "none" and face boxes left to right."""
        chosen = max(range(len(faces)), key=lambda i: faces[i][2] * faces[i][3]) if faces else None
        self._subjects[_digest(photo)] = {
            "kind": kind,
            "faces": [list(box) for box in faces],
            "chosen": chosen,
        }

    def _subject(self, photo: bytes) -> JSON:
        return self._subjects.get(_digest(photo), {"kind": "none", "faces": [], "chosen": None})

    async def __aenter__(self) -> InspectingService:
        app = web.Application(middlewares=[self._auth], client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/inspect", self._inspect)
        app.router.add_post("/v1/jobs", self._submit)
        app.router.add_get("/v1/jobs/{job_id}", self._status)
        app.router.add_get("/v1/jobs/{job_id}/events", self._events)
        consent = "/v1/users/{platform}/{user_id}/consent"
        app.router.add_get(consent, self._consent_get)
        app.router.add_put(consent, self._consent_put)
        app.router.add_delete(consent, self._consent_delete)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _form(self, request: web.Request) -> tuple[bytes | None, JSON]:
        image: bytes | None = None
        body: JSON = {}
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read()
            if part.name == "image":
                image = bytes(data)
            elif part.name == "request":
                body = json.loads(data)
        return image, body

    async def _inspect(self, request: web.Request) -> web.Response:
        image, _ = await self._form(request)
        if not image:
            return web.json_response({"error": "no image"}, status=400)
        self.inspections.append(_digest(image))
        return web.json_response({"subject": self._subject(image), "warnings": []})

    async def _submit(self, request: web.Request) -> web.Response:
        image, body = await self._form(request)
        requester = body.get("requester") or {}
        key = (str(requester.get("platform")), str(requester.get("user_id")))
        shows_face = image is not None and self._subject(image)["kind"] == "face"
        if shows_face and key not in self.consents:
            self.refused.append(body)
            return web.json_response(
                {"error": "consent_required", "message": "consent needed"}, status=403
            )
        self.jobs.append(body)
        return web.json_response(
            {"job_id": f"{len(self.jobs):032x}", "state": "queued", "position": 1}, status=202
        )

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"job_id": request.match_info["job_id"], "state": "queued", "position": 1}
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        state = {"job_id": request.match_info["job_id"], "state": "queued", "position": 1}
        await response.write(f"data: {json.dumps(state)}\n\n".encode())
        await self._closing.wait()  # a job that stays queued until the stand-in stops
        return response

    def _key(self, request: web.Request) -> tuple[str, str]:
        return request.match_info["platform"], request.match_info["user_id"]

    async def _consent_get(self, request: web.Request) -> web.Response:
        record = self.consents.get(self._key(request))
        return web.json_response({"consented": record is not None, "record": record})

    async def _consent_put(self, request: web.Request) -> web.Response:
        body = await request.json()
        record = {
            "wording_version": body.get("wording_version", ""),
            "language": body.get("language", "en"),
            "recorded_at": time.time(),
            "revoked_at": None,
        }
        self.consents[self._key(request)] = record
        return web.json_response({"consented": True, "record": record})

    async def _consent_delete(self, request: web.Request) -> web.Response:
        self.consents.pop(self._key(request), None)
        return web.json_response({"records_revoked": 1})


def _digest(photo: bytes) -> str:
    return hashlib.sha256(photo).hexdigest()
