"""Errors shared by every part of livingphoto.

Each error carries a one-line, user-facing message. The CLI maps them to exit codes
(DESIGN.md section 2) and the service maps them to HTTP statuses (section 3).
"""

from __future__ import annotations


class LivingPhotoError(Exception):
    """Base class: ``str(error)`` is a concise one-line message fit to show a user."""

    exit_code = 1
    http_status = 500


class UsageError(LivingPhotoError):
    """Unusable input or arguments (exit 2, HTTP 400)."""

    exit_code = 2
    http_status = 400


class ConsentRequired(LivingPhotoError):
    """The requester has not attested consent for the person pictured (exit 3, HTTP 403)."""

    exit_code = 3
    http_status = 403


class PolicyRefusal(LivingPhotoError):
    """Refused by the image or prompt policy (exit 3, HTTP 422).

    ``category`` names the policy category; ``suggestion`` tells the user what they can ask for.
    """

    exit_code = 3
    http_status = 422

    def __init__(self, category: str, message: str, rule: str = "", suggestion: str = "") -> None:
        super().__init__(message)
        self.category = category
        self.rule = rule
        self.suggestion = suggestion


class RateLimited(LivingPhotoError):
    """Too many requests or a full queue (HTTP 429 with ``Retry-After``)."""

    exit_code = 3
    http_status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GenerationFailed(LivingPhotoError):
    """The backend could not produce a clip (exit 4)."""

    exit_code = 4
    http_status = 500


class Cancelled(LivingPhotoError):
    """The job was cancelled. Always re-raised: never swallowed by a backend."""

    exit_code = 4
    http_status = 409
