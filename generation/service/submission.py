"""Strict parsing of the ``request`` JSON part of ``POST /v1/jobs`` (DESIGN.md section 3).

Unknown fields, wrong types and out-of-range values raise ``UsageError`` (HTTP 400) with a
one-line message naming the field. Nothing here touches the image or the store.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generation.service.jobs import Adjust, check_job_id
from livingphoto.errors import UsageError
from moderation.requester import Requester

MAX_PROMPT_CHARS = 500
LIMITS = {
    "variations": (1, 6),
    "seconds": (1.0, 6.0),
    "fps": (8, 30),
    "size": (128, 1024),
    "seed": (0, 2**31 - 1),
    "motion_scale": (0.1, 4.0),
    "face": (0, 63),
}
_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_PLATFORM = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

_TOP = frozenset(
    {
        "prompt",
        "variations",
        "seconds",
        "fps",
        "size",
        "seed",
        "motion_scale",
        "requester",
        "consent",
        "parent",
        "idempotency_key",
        "face",
    }
)
_REQUESTER = frozenset({"platform", "user_id", "chat_id"})
_CONSENT = frozenset({"attested", "at", "wording_version"})
_PARENT = frozenset({"job_id", "variation", "adjust"})


@dataclass(frozen=True)
class ParentRef:
    job_id: str
    adjust: Adjust
    variation: int | None = None  # the take the user picked (1-based)


@dataclass(frozen=True)
class Submission:
    requester: Requester
    prompt: str | None  # None: inherit the parent's
    variations: int | None
    seconds: float | None
    fps: int | None
    size: int | None
    seed: int | None
    motion_scale: float | None  # None: 1.0, or derived from the parent's for an adjustment
    consent_attested: bool
    consent_wording: str
    parent: ParentRef | None
    idempotency_key: str | None
    face: int | None = None  # which detected face to animate (0-based, left to right)


def parse_submission(raw: bytes | str) -> Submission:
    """Parse and validate the ``request`` JSON; raise ``UsageError`` on anything unexpected."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError("request is not valid JSON") from None
    obj = _object(data, "request", _TOP)
    requester = parse_requester(_object(obj.get("requester"), "requester", _REQUESTER))
    consent = obj.get("consent")
    attested, wording = False, ""
    if consent is not None:
        consent_obj = _object(consent, "consent", _CONSENT)
        attested = _bool(consent_obj.get("attested", False), "consent.attested")
        at = consent_obj.get("at")
        if at is not None and (not isinstance(at, str | int | float) or isinstance(at, bool)):
            raise UsageError("consent.at must be a timestamp string or number")
        wording = _optional_str(consent_obj.get("wording_version"), "consent.wording_version", 64)
    parent = _parent(obj.get("parent"))
    prompt = obj.get("prompt")
    if prompt is None and parent is None:
        raise UsageError("prompt is required")
    if prompt is not None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError("prompt must be a non-empty string")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise UsageError(f"prompt must be at most {MAX_PROMPT_CHARS} characters")
        prompt = prompt.strip()
    key = obj.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not _NAME.fullmatch(key)):
        raise UsageError("idempotency_key must be 1-128 letters, digits or _.:@-")
    return Submission(
        requester=requester,
        prompt=prompt,
        variations=_int_field(obj, "variations"),
        seconds=_float_field(obj, "seconds"),
        fps=_int_field(obj, "fps"),
        size=_int_field(obj, "size"),
        seed=_int_field(obj, "seed"),
        motion_scale=_float_field(obj, "motion_scale"),
        consent_attested=attested,
        consent_wording=wording,
        parent=parent,
        idempotency_key=key,
        face=_int_field(obj, "face"),
    )


def parse_requester(obj: Mapping[str, Any]) -> Requester:
    platform = obj.get("platform")
    user_id = obj.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    chat_id = obj.get("chat_id", "")
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        chat_id = str(chat_id)
    return make_requester(platform, user_id, chat_id)


def make_requester(platform: object, user_id: object, chat_id: object = "") -> Requester:
    """A validated ``Requester`` (also used for the ``/v1/users/{platform}/{user_id}`` paths)."""
    if not isinstance(platform, str) or not _PLATFORM.fullmatch(platform):
        raise UsageError("requester.platform must be a short lowercase name like 'telegram'")
    if not isinstance(user_id, str) or not _NAME.fullmatch(user_id):
        raise UsageError("requester.user_id must be 1-128 letters, digits or _.:@-")
    if chat_id is None:
        chat_id = ""
    if not isinstance(chat_id, str) or (chat_id and not _NAME.fullmatch(chat_id)):
        raise UsageError("requester.chat_id must be 1-128 letters, digits or _.:@-")
    return Requester(platform=platform, user_id=user_id, chat_id=chat_id)


def _parent(value: object) -> ParentRef | None:
    if value is None:
        return None
    obj = _object(value, "parent", _PARENT)
    job_id = obj.get("job_id")
    if not isinstance(job_id, str):
        raise UsageError("parent.job_id must be a job id")
    adjust_raw = obj.get("adjust", "reroll")
    try:
        adjust = Adjust(adjust_raw)
    except ValueError:
        choices = ", ".join(a.value for a in Adjust)
        raise UsageError(f"parent.adjust must be one of: {choices}") from None
    variation = obj.get("variation")
    if variation is not None and (
        not isinstance(variation, int) or isinstance(variation, bool) or not 1 <= variation <= 16
    ):
        raise UsageError("parent.variation must be an integer from 1")
    return ParentRef(job_id=check_job_id(job_id), adjust=adjust, variation=variation)


def _object(value: object, name: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UsageError(f"{name} must be a JSON object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UsageError(f"unknown field in {name}: {', '.join(unknown)}")
    return value


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{name} must be true or false")
    return value


def _optional_str(value: object, name: str, max_len: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_len:
        raise UsageError(f"{name} must be a string of at most {max_len} characters")
    return value


def _int_field(obj: Mapping[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    low, high = LIMITS[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise UsageError(f"{name} must be an integer")
    if not low <= value <= high:
        raise UsageError(f"{name} must be from {low} to {high}, got {value}")
    return value


def _float_field(obj: Mapping[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    low, high = LIMITS[name]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise UsageError(f"{name} must be a number")
    if not low <= value <= high:
        raise UsageError(f"{name} must be from {low} to {high}, got {value}")
    return float(value)
