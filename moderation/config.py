"""Settings of the moderation layer (limits, thresholds, quotas). Extended by issue 4."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from livingphoto.env import env_int


@dataclass(frozen=True)
class ModerationSettings:
    max_image_bytes: int = 20 * 1024 * 1024  # LIVINGPHOTO_MAX_IMAGE_BYTES
    max_image_pixels: int = 40_000_000  # LIVINGPHOTO_MAX_IMAGE_PIXELS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ModerationSettings:
        return cls(
            max_image_bytes=env_int(
                env, "LIVINGPHOTO_MAX_IMAGE_BYTES", cls.max_image_bytes, minimum=1
            ),
            max_image_pixels=env_int(
                env, "LIVINGPHOTO_MAX_IMAGE_PIXELS", cls.max_image_pixels, minimum=1
            ),
        )
