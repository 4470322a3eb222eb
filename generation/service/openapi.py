"""The OpenAPI 3.1 document of the v1 API, served at ``/v1/openapi.json``.

Written out by hand next to the routes it describes; a test checks that its paths and methods
are exactly the application's routes.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Bad input (invalid JSON, unknown field, out-of-range value, unusable image)",
        401: "Missing or wrong bearer token",
        403: "Consent for the person pictured has not been attested",
        404: "No such job or variation",
        410: "The media was deleted (retention, forget or revoked consent)",
        413: "The request body is too large",
        422: "Refused by policy",
        429: "Queue full or rate limited; see Retry-After",
    }
    return {str(s): _json(_ERROR, text[s]) for s in statuses}


_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
_USER = [
    {"name": "platform", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}},
]
_JOB = {"$ref": "#/components/schemas/Job"}
_CONSENT = _json({"type": "object"}, "Consent status")


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livingphoto generation service",
            "version": "1",
            "description": "Photo + motion prompt -> looping clips. See DESIGN.md section 3.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "Alive")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format)",
                    "responses": {
                        "200": {
                            "description": "Metrics",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_errors(401),
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors(401)},
                }
            },
            "/v1/jobs": {
                "post": {
                    "summary": "Submit a photo and a motion prompt",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["request"],
                                    "properties": {
                                        "image": {"type": "string", "format": "binary"},
                                        "request": {"$ref": "#/components/schemas/JobRequest"},
                                    },
                                },
                                "encoding": {"request": {"contentType": "application/json"}},
                            }
                        },
                    },
                    "responses": {
                        "202": _json(_JOB, "Accepted (or the earlier job with this key)"),
                        **_errors(400, 401, 403, 410, 413, 422, 429),
                    },
                }
            },
            "/v1/jobs/{job_id}": {
                "parameters": [_JOB_ID],
                "get": {
                    "summary": "Job status",
                    "responses": {"200": _json(_JOB, "The job"), **_errors(401, 404)},
                },
                "delete": {
                    "summary": "Cancel a job (a running job stops at its next step)",
                    "responses": {
                        "200": _json(_JOB, "Already final, or cancelled before it started"),
                        "202": _json(_JOB, "Cancellation requested"),
                        **_errors(401, 404),
                    },
                },
            },
            "/v1/jobs/{job_id}/events": {
                "parameters": [_JOB_ID],
                "get": {
                    "summary": "Server-Sent Events: the job object on every change",
                    "responses": {
                        "200": {
                            "description": "event: job, data: the job object; ends at a final state",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 404),
                    },
                },
            },
            "/v1/inspect": {
                "post": {
                    "summary": "What a photo shows (human face, animal, none); stores nothing",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["image"],
                                    "properties": {"image": {"type": "string", "format": "binary"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {"$ref": "#/components/schemas/Inspection"}, "The photo's subject"
                        ),
                        **_errors(400, 401, 413),
                    },
                }
            },
            "/v1/jobs/{job_id}/variations/{index}": {
                "parameters": [
                    _JOB_ID,
                    {
                        "name": "index",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "get": {
                    "summary": "Download one clip",
                    "responses": {
                        "200": {
                            "description": "The clip",
                            "content": {"video/mp4": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 404, 410),
                    },
                },
            },
            "/v1/users/{platform}/{user_id}": {
                "parameters": _USER,
                "delete": {
                    "summary": "Forget a user: jobs, media and consent records",
                    "responses": {
                        "200": _json({"type": "object"}, "What was deleted"),
                        **_errors(400, 401),
                    },
                },
            },
            "/v1/users/{platform}/{user_id}/consent": {
                "parameters": _USER,
                "get": {
                    "summary": "Consent status",
                    "responses": {"200": _CONSENT, **_errors(400, 401)},
                },
                "put": {
                    "summary": "Record the user's consent attestation",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "wording_version": {"type": "string"},
                                        "scope": {
                                            "enum": ["self", "permission", "guardian", "attested"]
                                        },
                                        "chat_id": {"type": "string"},
                                        "language": {
                                            "type": "string",
                                            "description": "ISO 639-1 code of the wording read",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"200": _CONSENT, **_errors(400, 401)},
                },
                "delete": {
                    "summary": "Revoke consent (also deletes the user's media)",
                    "responses": {"200": _CONSENT, **_errors(400, 401)},
                },
            },
        },
    }


def _schemas() -> dict[str, Any]:
    requester = {
        "type": "object",
        "additionalProperties": False,
        "required": ["platform", "user_id"],
        "properties": {
            "platform": {"type": "string"},
            "user_id": {"type": "string"},
            "chat_id": {"type": "string"},
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string"},
                "message": {"type": "string"},
                "category": {"type": "string"},
                "retry_after_s": {"type": "number"},
            },
        },
        "Inspection": {
            "type": "object",
            "required": ["subject", "warnings"],
            "properties": {
                "subject": {
                    "type": "object",
                    "required": ["kind", "faces", "chosen"],
                    "properties": {
                        "kind": {"enum": ["face", "animal", "none"]},
                        "faces": {
                            "type": "array",
                            "description": "[x, y, w, h] in the photo's pixels, left to right",
                            "items": {
                                "type": "array",
                                "items": {"type": "integer"},
                                "minItems": 4,
                                "maxItems": 4,
                            },
                        },
                        "chosen": {"type": ["integer", "null"], "minimum": 0},
                    },
                },
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
        "JobRequest": {
            "type": "object",
            "additionalProperties": False,
            "required": ["requester"],
            "properties": {
                "prompt": {"type": "string", "maxLength": 500},
                "variations": {"type": "integer", "minimum": 1, "maximum": 6},
                "seconds": {"type": "number", "minimum": 1, "maximum": 6},
                "fps": {"type": "integer", "minimum": 8, "maximum": 30},
                "size": {"type": "integer", "minimum": 128, "maximum": 1024},
                "seed": {"type": ["integer", "null"], "minimum": 0},
                "motion_scale": {"type": "number", "minimum": 0.1, "maximum": 4},
                "face": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 63,
                    "description": "Which detected face to animate (0-based, left to right; "
                    "default: the largest), as in POST /v1/inspect",
                },
                "requester": requester,
                "consent": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "attested": {"type": "boolean"},
                        "at": {"type": ["string", "number"]},
                        "wording_version": {"type": "string"},
                    },
                },
                "parent": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["job_id"],
                    "properties": {
                        "job_id": {"type": "string"},
                        "variation": {"type": "integer", "minimum": 1},
                        "adjust": {"enum": ["reroll", "less", "more", "vary"]},
                    },
                },
                "idempotency_key": {"type": "string", "maxLength": 128},
            },
        },
        "Job": {
            "type": "object",
            "required": ["job_id", "state", "position", "progress", "variations", "error"],
            "properties": {
                "job_id": {"type": "string"},
                "state": {"enum": ["queued", "running", "done", "failed", "refused", "cancelled"]},
                "position": {"type": "integer"},
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "stage": {"type": "string"},
                "variations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": {"type": "integer"},
                            "url": {"type": "string"},
                            "seed": {"type": "integer"},
                            "rank": {"type": "integer"},
                            "scores": {"type": "object"},
                            "combined": {"type": "number"},
                            "flagged": {"type": "boolean"},
                        },
                    },
                },
                "error": {"type": ["string", "null"]},
                "category": {"type": ["string", "null"]},
                "cancel_requested": {"type": "boolean"},
                "parent": {"type": ["object", "null"]},
                "prompt": {"type": "string"},
                "options": {"type": "object"},
                "attempts": {"type": "integer"},
                "warnings": {"type": "array", "items": {"type": "string"}},
                "media_deleted": {"type": "boolean"},
                "created_at": {"type": "number", "description": "Unix time the job was accepted"},
                "dispatched_at": {
                    "type": ["number", "null"],
                    "description": "Unix time it left the line for a worker",
                },
                "started_at": {"type": ["number", "null"]},
                "finished_at": {"type": ["number", "null"]},
                "generation_s": {
                    "type": ["number", "null"],
                    "description": "seconds the worker spent rendering, encoding and scoring",
                },
                "moderation_s": {
                    "type": "number",
                    "description": (
                        "seconds spent in moderation: the photo check before acceptance and the "
                        "output check before the clips are served, each including the wait for "
                        "a free moderation thread (LIVINGPHOTO_MODERATION_THREADS)"
                    ),
                },
            },
        },
    }
