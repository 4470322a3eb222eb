"""Settings of the generation side: backend, model, service, queue, retention.

Owned by the generation package; aggregated in ``livingphoto.settings``. Every field maps to one
environment variable named in ``ENV_VARS`` (deployment docs and tests cross-check these names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from livingphoto.env import env_float, env_int, env_str
from livingphoto.errors import UsageError


@dataclass(frozen=True)
class GenerationSettings:
    backend: str = "warp"  # LIVINGPHOTO_BACKEND: warp | diffusers | sleep
    model: str = ""  # LIVINGPHOTO_MODEL: hub id or local directory (diffusers)
    sleep_seconds: float = 0.5  # LIVINGPHOTO_SLEEP_SECONDS: duration of the ``sleep`` backend

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GenerationSettings:
        return cls(
            backend=env_str(env, "LIVINGPHOTO_BACKEND", cls.backend),
            model=env_str(env, "LIVINGPHOTO_MODEL", cls.model),
            sleep_seconds=env_float(env, "LIVINGPHOTO_SLEEP_SECONDS", cls.sleep_seconds, 0.0),
        )

    def backend_options(self) -> dict[str, str]:
        """Backend-specific options for ``generation.backends.make_backend``."""
        return {"seconds": repr(self.sleep_seconds)} if self.backend == "sleep" else {}


@dataclass(frozen=True)
class ServiceSettings:
    service_url: str = "http://127.0.0.1:8750"  # LIVINGPHOTO_SERVICE_URL
    service_token: str = field(default="", repr=False)  # LIVINGPHOTO_SERVICE_TOKEN
    data_dir: Path = Path("data")  # LIVINGPHOTO_DATA_DIR
    queue: str = "embedded"  # LIVINGPHOTO_QUEUE: embedded | redis://host:port/db
    host: str = "127.0.0.1"  # LIVINGPHOTO_HOST
    port: int = 8750  # LIVINGPHOTO_PORT
    retention_hours: float = 24.0  # LIVINGPHOTO_RETENTION_HOURS
    max_queue: int = 100  # LIVINGPHOTO_MAX_QUEUE: jobs waiting (not running) before 429
    max_inflight_per_user: int = 3  # LIVINGPHOTO_MAX_INFLIGHT_PER_USER: queued + running
    job_timeout_s: float = 600.0  # LIVINGPHOTO_JOB_TIMEOUT_S
    workers: int = 1  # LIVINGPHOTO_WORKERS: jobs run at once by the embedded worker
    max_upload_bytes: int = 25 * 1024 * 1024  # LIVINGPHOTO_MAX_UPLOAD_BYTES: whole request body
    retention_sweep_s: float = 300.0  # LIVINGPHOTO_RETENTION_SWEEP_S: sweeper period
    redis_prefix: str = "livingphoto"  # LIVINGPHOTO_REDIS_PREFIX: stream and key prefix
    lease_s: float = 15.0  # LIVINGPHOTO_QUEUE_LEASE_S: idle time before a job is taken over
    max_deliveries: int = 3  # LIVINGPHOTO_QUEUE_MAX_DELIVERIES: then the job is dead-lettered

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        settings = cls(
            service_url=env_str(env, "LIVINGPHOTO_SERVICE_URL", cls.service_url),
            service_token=env_str(env, "LIVINGPHOTO_SERVICE_TOKEN", ""),
            data_dir=Path(env_str(env, "LIVINGPHOTO_DATA_DIR", str(cls.data_dir))),
            queue=env_str(env, "LIVINGPHOTO_QUEUE", cls.queue),
            host=env_str(env, "LIVINGPHOTO_HOST", cls.host),
            port=env_int(env, "LIVINGPHOTO_PORT", cls.port, minimum=0),
            retention_hours=env_float(
                env, "LIVINGPHOTO_RETENTION_HOURS", cls.retention_hours, minimum=0.0
            ),
            max_queue=env_int(env, "LIVINGPHOTO_MAX_QUEUE", cls.max_queue, minimum=1),
            max_inflight_per_user=env_int(
                env, "LIVINGPHOTO_MAX_INFLIGHT_PER_USER", cls.max_inflight_per_user, minimum=1
            ),
            job_timeout_s=env_float(
                env, "LIVINGPHOTO_JOB_TIMEOUT_S", cls.job_timeout_s, minimum=0.1
            ),
            workers=env_int(env, "LIVINGPHOTO_WORKERS", cls.workers, minimum=1),
            max_upload_bytes=env_int(
                env, "LIVINGPHOTO_MAX_UPLOAD_BYTES", cls.max_upload_bytes, minimum=1024
            ),
            retention_sweep_s=env_float(
                env, "LIVINGPHOTO_RETENTION_SWEEP_S", cls.retention_sweep_s, minimum=0.05
            ),
            redis_prefix=env_str(env, "LIVINGPHOTO_REDIS_PREFIX", cls.redis_prefix),
            lease_s=env_float(env, "LIVINGPHOTO_QUEUE_LEASE_S", cls.lease_s, minimum=0.2),
            max_deliveries=env_int(
                env, "LIVINGPHOTO_QUEUE_MAX_DELIVERIES", cls.max_deliveries, minimum=1
            ),
        )
        settings.check_queue()
        return settings

    def check_queue(self) -> None:
        """Raise ``UsageError`` unless ``queue`` is ``embedded`` or a parsable ``redis://`` URL."""
        if self.queue == "embedded":
            return
        if not self.queue.startswith(("redis://", "rediss://")):
            raise UsageError(f"queue must be 'embedded' or a redis:// URL, got {self.queue!r}")
        # A URL that cannot be parsed is a configuration mistake: say so before anything opens.
        from redis.connection import parse_url

        parse: Callable[[str], dict[str, object]] = parse_url  # redis-py's own URL parser
        try:
            parse(self.queue)
        except ValueError as error:
            shown = re.sub(r"//[^@/]*@", "//***@", self.queue)
            raise UsageError(f"not a usable Redis URL {shown}: {error}") from None

    @property
    def uses_redis(self) -> bool:
        return self.queue != "embedded"


# Every environment variable read by this module (deployment docs and tests cross-check them).
ENV_VARS = (
    "LIVINGPHOTO_BACKEND",
    "LIVINGPHOTO_MODEL",
    "LIVINGPHOTO_SLEEP_SECONDS",
    "LIVINGPHOTO_SERVICE_URL",
    "LIVINGPHOTO_SERVICE_TOKEN",
    "LIVINGPHOTO_DATA_DIR",
    "LIVINGPHOTO_QUEUE",
    "LIVINGPHOTO_HOST",
    "LIVINGPHOTO_PORT",
    "LIVINGPHOTO_RETENTION_HOURS",
    "LIVINGPHOTO_MAX_QUEUE",
    "LIVINGPHOTO_MAX_INFLIGHT_PER_USER",
    "LIVINGPHOTO_JOB_TIMEOUT_S",
    "LIVINGPHOTO_WORKERS",
    "LIVINGPHOTO_MAX_UPLOAD_BYTES",
    "LIVINGPHOTO_RETENTION_SWEEP_S",
    "LIVINGPHOTO_REDIS_PREFIX",
    "LIVINGPHOTO_QUEUE_LEASE_S",
    "LIVINGPHOTO_QUEUE_MAX_DELIVERIES",
)
