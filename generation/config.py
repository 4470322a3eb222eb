"""Settings of the generation side: backend, model, service, queue, retention.

Owned by the generation package; aggregated in ``livingphoto.settings``. Every field maps to one
environment variable named in ``ENV_VARS`` (deployment docs and tests cross-check these names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from livingphoto.env import env_float, env_int, env_str


@dataclass(frozen=True)
class GenerationSettings:
    backend: str = "warp"  # LIVINGPHOTO_BACKEND: warp | diffusers
    model: str = ""  # LIVINGPHOTO_MODEL: hub id or local directory (diffusers)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GenerationSettings:
        return cls(
            backend=env_str(env, "LIVINGPHOTO_BACKEND", cls.backend),
            model=env_str(env, "LIVINGPHOTO_MODEL", cls.model),
        )


@dataclass(frozen=True)
class ServiceSettings:
    service_url: str = "http://127.0.0.1:8750"  # LIVINGPHOTO_SERVICE_URL
    service_token: str = ""  # LIVINGPHOTO_SERVICE_TOKEN
    data_dir: Path = Path("data")  # LIVINGPHOTO_DATA_DIR
    queue: str = "embedded"  # LIVINGPHOTO_QUEUE: embedded | redis://host:port/db
    host: str = "127.0.0.1"  # LIVINGPHOTO_HOST
    port: int = 8750  # LIVINGPHOTO_PORT
    retention_hours: float = 24.0  # LIVINGPHOTO_RETENTION_HOURS
    max_queue: int = 100  # LIVINGPHOTO_MAX_QUEUE
    max_inflight_per_user: int = 3  # LIVINGPHOTO_MAX_INFLIGHT_PER_USER
    job_timeout_s: float = 600.0  # LIVINGPHOTO_JOB_TIMEOUT_S

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServiceSettings:
        return cls(
            service_url=env_str(env, "LIVINGPHOTO_SERVICE_URL", cls.service_url),
            service_token=env_str(env, "LIVINGPHOTO_SERVICE_TOKEN", cls.service_token),
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
                env, "LIVINGPHOTO_JOB_TIMEOUT_S", cls.job_timeout_s, minimum=1.0
            ),
        )
