"""Async client of the generation service HTTP API (DESIGN.md section 3), used by the bots.

The ``aiohttp.ClientSession`` is opened once by the caller and passed in. Error statuses become
the project's errors at this boundary: 400 ``UsageError``, 403 ``ConsentRequired``, 422
``PolicyRefusal`` (category, message, suggestion), 429 ``RateLimited`` (``retry_after_s`` from
``Retry-After``); anything else (401, 404, 5xx, connection trouble) is a ``ServiceError``.

Usage::

    async with aiohttp.ClientSession() as http:
        client = ServiceClient(http, "http://127.0.0.1:8750", token)
        submitted = await client.submit(photo_bytes, "photo.jpg", JobRequest(...))
        async for status in client.events(submitted.job_id):
            ...
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from livingphoto.errors import (
    ConsentRequired,
    LivingPhotoError,
    PolicyRefusal,
    RateLimited,
    UsageError,
)
from moderation.consent import CONSENT_VERSION
from moderation.requester import Requester

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed", "refused", "cancelled"]
Adjust = Literal["reroll", "less", "more", "vary"]
FINAL_STATES: frozenset[str] = frozenset({"done", "failed", "refused", "cancelled"})


class ServiceError(LivingPhotoError):
    """The service could not be reached or answered unexpectedly (not the user's fault)."""

    exit_code = 1
    http_status = 502

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ParentRef:
    job_id: str
    variation: int | None
    adjust: Adjust

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "variation": self.variation, "adjust": self.adjust}


@dataclass(frozen=True)
class JobRequest:
    """The ``request`` part of ``POST /v1/jobs``; a child (``parent`` set) may omit the prompt
    and the image: the service then reuses its parent's."""

    prompt: str
    requester: Requester
    consent_attested: bool
    consent_at: str = ""  # ISO 8601 time of the attestation
    wording_version: str = ""  # version of the consent text the user confirmed
    variations: int = 3
    seconds: float = 3.0
    motion_scale: float | None = None  # None: the service's default, or the parent's adjusted
    size: int = 0  # long side in px; 0: the service's default
    seed: int | None = None
    parent: ParentRef | None = None
    idempotency_key: str = ""
    face: int | None = None  # which face to animate (0-based index into the inspected faces)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "variations": self.variations,
            "seconds": self.seconds,
            "requester": {
                "platform": self.requester.platform,
                "user_id": self.requester.user_id,
                "chat_id": self.requester.chat_id,
            },
            "consent": {"attested": self.consent_attested},
        }
        if self.prompt:
            body["prompt"] = self.prompt
        if self.consent_at:
            body["consent"]["at"] = self.consent_at
        if self.wording_version:
            body["consent"]["wording_version"] = self.wording_version
        if self.motion_scale is not None:
            body["motion_scale"] = self.motion_scale
        if self.size:
            body["size"] = self.size
        if self.seed is not None:
            body["seed"] = self.seed
        if self.parent is not None:
            body["parent"] = self.parent.to_json()
        if self.idempotency_key:
            body["idempotency_key"] = self.idempotency_key
        if self.face is not None:
            body["face"] = self.face
        return body


@dataclass(frozen=True)
class Submitted:
    job_id: str
    state: str
    position: int


@dataclass(frozen=True)
class VariationInfo:
    index: int
    url: str
    scores: Mapping[str, float] = field(default_factory=dict)
    rank: int = 0  # 0 when the service did not say


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    state: str
    position: int = 0
    progress: float = 0.0
    variations: tuple[VariationInfo, ...] = ()
    error: str = ""
    category: str = ""  # policy category when state == "refused"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> JobStatus:
        variations = tuple(
            VariationInfo(
                index=int(v["index"]),
                url=str(v.get("url", "")),
                scores={str(k): float(s) for k, s in dict(v.get("scores") or {}).items()},
                rank=int(v.get("rank") or 0),
            )
            for v in body.get("variations") or ()
        )
        error = body.get("error") or ""
        category = str(body.get("category") or "")
        if isinstance(error, Mapping):
            category = str(error.get("category") or category)
            error = str(error.get("message") or "")
        return cls(
            job_id=str(body["job_id"]),
            state=str(body.get("state", "queued")),
            position=int(body.get("position") or 0),
            progress=float(body.get("progress") or 0.0),
            variations=variations,
            error=str(error),
            category=category,
        )


Box = tuple[int, int, int, int]  # x, y, width, height in the photo's pixels


@dataclass(frozen=True)
class Subject:
    """What ``POST /v1/inspect`` saw: ``kind`` "face" only for a human face; ``faces`` left to
    right; ``chosen`` the face the service would animate (None when there is none)."""

    kind: Literal["face", "animal", "none"]
    faces: tuple[Box, ...] = ()
    chosen: int | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Subject:
        """Parse the service's answer; raises ``ServiceError`` when it is malformed."""
        subject = body.get("subject")
        try:
            if not isinstance(subject, Mapping):
                raise TypeError("no subject")
            raw_kind = str(subject.get("kind"))
            kind: Literal["face", "animal", "none"] = (
                "face" if raw_kind == "face" else "animal" if raw_kind == "animal" else "none"
            )
            faces = tuple(_box(box) for box in subject.get("faces") or ())
            chosen = subject.get("chosen")
            pick = int(chosen) if isinstance(chosen, int) and 0 <= chosen < len(faces) else None
            warnings = tuple(str(w) for w in body.get("warnings") or ())
        except (TypeError, ValueError):
            raise ServiceError("generation service sent a malformed inspection") from None
        return cls(kind, faces, pick, warnings)


def _box(raw: object) -> Box:
    if not isinstance(raw, list | tuple) or len(raw) != 4:
        raise ValueError("a face box is [x, y, w, h]")
    x, y, w, h = (int(v) for v in raw)
    return (x, y, w, h)


@dataclass(frozen=True)
class ForgetReport:
    jobs: int
    files: int
    consent_records: int


@dataclass(frozen=True)
class ConsentRecord:
    attested: bool
    at: str = ""


class ServiceClient:
    """Typed calls to one generation service. Holds no resources of its own."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}

    async def submit(self, image: bytes | None, filename: str, request: JobRequest) -> Submitted:
        form = aiohttp.FormData()
        if image is not None:
            form.add_field(
                "image", image, filename=filename, content_type="application/octet-stream"
            )
        form.add_field("request", json.dumps(request.to_json()), content_type="application/json")
        body = await self._json("POST", "/v1/jobs", data=form)
        return Submitted(
            job_id=str(body["job_id"]),
            state=str(body.get("state", "queued")),
            position=int(body.get("position") or 0),
        )

    async def inspect(self, image: bytes, filename: str) -> Subject:
        """``POST /v1/inspect``: where the subject of ``image`` is; the service keeps nothing.
        Raises ``UsageError`` for an unusable image (400), ``ServiceError`` otherwise (an older
        service without the endpoint answers 404)."""
        form = aiohttp.FormData()
        form.add_field("image", image, filename=filename, content_type="application/octet-stream")
        return Subject.from_json(await self._json("POST", "/v1/inspect", data=form))

    async def status(self, job_id: str) -> JobStatus:
        return JobStatus.from_json(await self._json("GET", f"/v1/jobs/{job_id}"))

    async def events(self, job_id: str) -> AsyncIterator[JobStatus]:
        """Server-sent job states until a final one (the stream may end earlier: re-poll then)."""
        url = f"{self._base}/v1/jobs/{job_id}/events"
        try:
            async with self._session.get(
                url,
                headers={**self._headers, "Accept": "text/event-stream"},
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
            ) as response:
                await _raise_for_status(response)
                data: list[str] = []
                async for raw in response.content:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif not line and data:
                        status = JobStatus.from_json(json.loads("\n".join(data)))
                        data = []
                        yield status
                        if status.final:
                            return
        except aiohttp.ClientError as error:
            raise ServiceError(f"lost the progress stream of job {job_id}: {error}") from None

    async def download(self, job_id: str, k: int) -> bytes:
        url = f"{self._base}/v1/jobs/{job_id}/variations/{k}"
        try:
            async with self._session.get(url, headers=self._headers) as response:
                await _raise_for_status(response)
                return await response.read()
        except aiohttp.ClientError as error:
            raise ServiceError(f"could not download variation {k}: {error}") from None

    async def cancel(self, job_id: str) -> None:
        await self._json("DELETE", f"/v1/jobs/{job_id}")

    async def forget(self, requester: Requester) -> ForgetReport:
        """Delete the user's jobs, media and consent records; returns what was deleted."""
        body = await self._json("DELETE", _user_path(requester))
        moderation = body.get("moderation")
        consent = moderation.get("consent_records", 0) if isinstance(moderation, Mapping) else 0
        return ForgetReport(
            jobs=_int(body.get("jobs_deleted", body.get("jobs"))),
            files=_int(body.get("files_deleted", body.get("media_files"))),
            consent_records=_int(body.get("consent_records", consent)),
        )

    async def consent_get(self, requester: Requester) -> ConsentRecord:
        body = await self._json("GET", _user_path(requester) + "/consent")
        return _consent_from_json(body)

    async def consent_put(
        self, requester: Requester, wording_version: str, language: str = ""
    ) -> ConsentRecord:
        """Record consent to the wording ``wording_version`` as shown in ``language``."""
        body: dict[str, Any] = {"wording_version": wording_version, "chat_id": requester.chat_id}
        if language:
            body["language"] = language
        answer = await self._json("PUT", _user_path(requester) + "/consent", json_body=body)
        return _consent_from_json(answer)

    async def consent_delete(self, requester: Requester) -> None:
        await self._json("DELETE", _user_path(requester) + "/consent")

    async def _json(
        self,
        method: str,
        path: str,
        *,
        data: aiohttp.FormData | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method,
                self._base + path,
                headers=self._headers,
                data=data,
                json=json_body,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response:
                await _raise_for_status(response)
                if response.status == 204:
                    return {}
                body = await response.json(content_type=None)
        except aiohttp.ClientError as error:
            raise ServiceError(f"generation service unreachable: {error}") from None
        except TimeoutError:
            raise ServiceError("generation service did not answer in time") from None
        except json.JSONDecodeError:
            raise ServiceError("generation service sent a malformed answer") from None
        return body if isinstance(body, dict) else {}


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _user_path(requester: Requester) -> str:
    return f"/v1/users/{requester.platform}/{requester.user_id}"


def _consent_from_json(body: Mapping[str, Any]) -> ConsentRecord:
    """The service's consent status: ``{valid|consented|...}`` or the ledger record itself
    (``{wording_version, recorded_at, revoked_at}``; only the current wording counts)."""
    record = body.get("consent", body)
    if not isinstance(record, Mapping):
        return ConsentRecord(attested=bool(record))
    at = record.get("recorded_at", record.get("at"))
    when = _iso(at) if isinstance(at, int | float) and not isinstance(at, bool) else str(at or "")
    for name in ("valid", "consented", "attested"):
        if isinstance(record.get(name), bool):
            return ConsentRecord(attested=bool(record[name]), at=when)
    if "recorded_at" not in record:
        return ConsentRecord(attested=False)
    attested = record.get("revoked_at") is None and record.get("wording_version") == CONSENT_VERSION
    return ConsentRecord(attested=attested, at=when)


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    try:
        body = await response.json(content_type=None)
    except (json.JSONDecodeError, aiohttp.ClientError, UnicodeDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("error") or response.reason or "error")
    if response.status == 400:
        raise UsageError(message)
    if response.status == 403:
        raise ConsentRequired(message)
    if response.status == 422:
        raise PolicyRefusal(
            category=str(body.get("category") or "policy"),
            message=message,
            rule=str(body.get("rule") or ""),
            suggestion=str(body.get("suggestion") or ""),
        )
    if response.status == 429:
        raise RateLimited(message, retry_after_s=_retry_after(response.headers))
    raise ServiceError(f"generation service answered {response.status}: {message}", response.status)


def _retry_after(headers: Mapping[str, str]) -> float:
    raw = headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return 30.0
