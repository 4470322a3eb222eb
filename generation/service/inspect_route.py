"""``POST /v1/inspect``: what a photo shows, so a bot can ask for consent only for people.

Multipart with one part ``image``. Answers 200 ``{"subject": {"kind": "face"|"animal"|"none",
"faces": [[x, y, w, h], ...], "chosen": k|null}, "warnings": [...]}`` (boxes in the photo's pixels
after EXIF orientation, left to right; ``chosen`` is the largest), 400 for an unusable image,
413 past the photo size limit. Nothing is stored: the photo lives in memory for this request only.
What was found (boxes and landmarks, no pixels) is remembered for ``REMEMBER_S`` under a digest of
the photo's bytes, because a bot inspects a photo right before it submits it: the submission then
decides consent without searching the photo again, and the worker gets the faces with the job.
Beside the search (one core), the scheduler's ``Prechecks`` of the photo start on the pixels:
its NSFW score and its old-scan check, remembered with the subject, so that the submission's
moderation check does not score the photo again (about 20 ms less before a job is accepted).

``register(app)`` adds the route and the lifecycle that loads the face model once, in a thread
(so start-up is not held up by it); detection runs in a small thread pool of its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, web
from numpy.typing import NDArray

from generation.faces import FaceModel
from generation.restore import DamageReport
from generation.service.errors import PayloadTooLarge
from generation.service.multipart import megabytes, read_part
from generation.subject import Subject, choose, find_subject
from livingphoto.errors import UsageError
from livingphoto.settings import Settings
from moderation.intake import SanitizedImage, load_image

REMEMBER_S = 600.0  # how long an inspected photo's subject is remembered
REMEMBER_PHOTOS = 64  # at most this many (the oldest is forgotten first)


@dataclass(frozen=True)
class Prechecks:
    """Work a photo's submission needs, started while the photo is inspected (a bot inspects a
    photo right before it submits it) on other threads than the face search, which holds one
    core: the photo's NSFW score and its old-scan report. The submission awaits these instead
    of computing them (they are the same pixels: the same bytes decode the same way)."""

    score: asyncio.Future[float]
    damage: asyncio.Future[DamageReport]


PrecheckFn = Callable[[NDArray[np.uint8]], Prechecks]


def photo_digest(photo: bytes) -> bytes:
    """The key a photo's subject is remembered under (BLAKE2b-128 of its bytes)."""
    return hashlib.blake2b(photo, digest_size=16).digest()


class SubjectService:
    """The face model behind ``/v1/inspect`` and the service's consent decision (loaded once).

    Its state (the model, the remembered subjects) is touched only on the event loop thread;
    detection runs in its own small pool."""

    def __init__(
        self, max_bytes: int, max_pixels: int, threads: int = 1, clock: Any = time.monotonic
    ) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="inspect")
        self._model: asyncio.Future[FaceModel] | None = None
        self._clock = clock
        self._seen: OrderedDict[bytes, tuple[float, Subject, Prechecks | None]] = OrderedDict()

    async def model(self) -> FaceModel:
        """The face model, loaded on first use in the pool (later callers wait for it)."""
        if self._model is None:
            self._model = asyncio.get_running_loop().run_in_executor(self._executor, FaceModel)
        return await self._model

    async def inspect(self, photo: bytes, prechecks: PrecheckFn | None = None) -> dict[str, Any]:
        """Decode ``photo`` (``moderation.intake`` limits; ``UsageError`` when unusable) and
        describe its subject: ``{"subject": {...}, "warnings": [...]}``. ``prechecks`` starts,
        on the decoded pixels, the work the photo's submission will need (``Prechecks``): it
        runs beside the face search and is remembered with what the search found."""
        model = await self.model()
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self._executor, self._decode, photo)
        started = prechecks(image.rgb) if prechecks is not None else None
        subject = await loop.run_in_executor(self._executor, find_subject, model, image.rgb)
        self._remember(photo_digest(photo), subject, started)
        return {
            "subject": subject.to_json(),
            "warnings": list(dict.fromkeys([*image.warnings, *subject.warnings])),
        }

    async def describe(
        self, rgb: NDArray[np.uint8], face: int | None = None, photo: bytes | None = None
    ) -> Subject:
        """The subject of an already decoded photo (``UsageError`` if ``face`` is out of range).
        ``photo``: the bytes ``rgb`` was decoded from, to reuse what ``inspect`` found."""
        if photo is not None:
            seen = self._recall(photo_digest(photo))
            if seen is not None:
                return choose(dataclasses.replace(seen, chosen=None), face)
        model = await self.model()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, find_subject, model, rgb, face
        )

    def prechecks_of(self, photo: bytes) -> Prechecks | None:
        """What ``inspect`` started for these bytes (while it is remembered), or None."""
        entry = self._recall_entry(photo_digest(photo))
        return None if entry is None else entry[2]

    def _decode(self, photo: bytes) -> SanitizedImage:
        return load_image(photo, max_bytes=self.max_bytes, max_pixels=self.max_pixels)

    def _remember(self, key: bytes, subject: Subject, prechecks: Prechecks | None = None) -> None:
        self._seen[key] = (self._clock() + REMEMBER_S, subject, prechecks)
        self._seen.move_to_end(key)
        while len(self._seen) > REMEMBER_PHOTOS:
            self._seen.popitem(last=False)

    def _recall(self, key: bytes) -> Subject | None:
        entry = self._recall_entry(key)
        return None if entry is None else entry[1]

    def _recall_entry(self, key: bytes) -> tuple[float, Subject, Prechecks | None] | None:
        now = self._clock()
        while self._seen and next(iter(self._seen.values()))[0] <= now:
            self._seen.popitem(last=False)  # expired (entries are in order of expiry)
        return self._seen.get(key)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


SUBJECTS = web.AppKey("subjects", SubjectService)
# What the scheduler starts on an inspected photo for its submission (set once it runs).
PRECHECKS: web.AppKey[PrecheckFn] = web.AppKey("prechecks")


def register(app: web.Application, settings: Settings) -> None:
    """Add ``POST /v1/inspect`` and the face model's lifecycle to ``app``."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        service = SubjectService(
            settings.moderation.max_image_bytes, settings.moderation.max_image_pixels
        )
        app[SUBJECTS] = service
        try:
            yield
        finally:
            service.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/v1/inspect", inspect_photo)


async def inspect_photo(request: web.Request) -> web.Response:
    """The handler: read the ``image`` part (limits first), inspect it in memory."""
    service = request.app[SUBJECTS]
    photo = await _read_image(request, service.max_bytes)
    return web.json_response(await service.inspect(photo, request.app.get(PRECHECKS)))


async def _read_image(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit + 64 * 1024:
        raise PayloadTooLarge(f"photo too large: the limit is {megabytes(limit)}")
    if request.content_type != "multipart/form-data":
        raise UsageError("send multipart/form-data with the part 'image'")
    photo: bytes | None = None
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise UsageError("nested multipart bodies are not accepted")
            if part.name != "image":
                raise UsageError(f"unexpected multipart part {part.name!r}")
            if photo is not None:
                raise UsageError("more than one 'image' part")
            photo = await read_part(part, limit, "photo")
    except (ValueError, AssertionError, RuntimeError, LookupError):
        raise UsageError("malformed multipart body") from None
    if photo is None:
        raise UsageError("missing the multipart part 'image'")
    if not photo:
        raise UsageError("the photo is empty (0 bytes)")
    return photo
