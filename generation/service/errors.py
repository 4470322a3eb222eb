"""HTTP-specific errors of the service (the shared ones live in ``livingphoto.errors``)."""

from __future__ import annotations

from livingphoto.errors import LivingPhotoError


class NotFound(LivingPhotoError):
    """No such job, variation or route (HTTP 404)."""

    http_status = 404


class Gone(LivingPhotoError):
    """The media existed but was deleted (retention or forget) (HTTP 410)."""

    http_status = 410


class PayloadTooLarge(LivingPhotoError):
    """The request body is larger than allowed (HTTP 413)."""

    http_status = 413


class Unauthorized(LivingPhotoError):
    """Missing or wrong bearer token (HTTP 401)."""

    http_status = 401


class Conflict(LivingPhotoError):
    """The request conflicts with the job's state (HTTP 409)."""

    http_status = 409


def error_code(error: LivingPhotoError) -> str:
    """The short machine-readable ``error`` field of a JSON error body."""
    return {
        400: "bad_request",
        401: "unauthorized",
        403: "consent_required",
        404: "not_found",
        409: "conflict",
        410: "gone",
        413: "payload_too_large",
        422: "policy_refusal",
        429: "rate_limited",
    }.get(error.http_status, "internal_error")
