"""Settings of the diffusers backend, read from the environment (DESIGN.md section 4 style).

| variable | meaning |
|---|---|
| `LIVINGPHOTO_DIFFUSERS_DEVICE` | `auto` (CUDA when available), `cuda` or `cpu` |
| `LIVINGPHOTO_DIFFUSERS_STEPS` | denoising steps; 0 = the model family's default |
| `LIVINGPHOTO_DIFFUSERS_GUIDANCE` | classifier-free guidance scale; empty = family default |
| `LIVINGPHOTO_DIFFUSERS_COMPILE` | `true`: `torch.compile` the transformer's repeated blocks |
| `LIVINGPHOTO_DIFFUSERS_OFFLOAD` | `auto` (only when VRAM is short), `none`, `model`, `sequential` |
| `LIVINGPHOTO_DIFFUSERS_VRAM_HEADROOM_GB` | VRAM kept free for activations when deciding on offload |
| `LIVINGPHOTO_DIFFUSERS_VAE_TILING_PX` | decode with VAE tiling when the generated long side reaches this |
| `LIVINGPHOTO_DIFFUSERS_MAX_BATCH` | most variations per pipeline call; 0 = all of a request at once |
| `LIVINGPHOTO_DIFFUSERS_LAST_FRAME` | `auto`: condition the last frame where the model can; `off`: never |
| `LIVINGPHOTO_DIFFUSERS_MAX_TOKENS` | text tokens sent to the text encoder |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

from livingphoto.env import env_bool, env_float, env_int, env_str
from livingphoto.errors import UsageError

Device = Literal["auto", "cuda", "cpu"]
Offload = Literal["auto", "none", "model", "sequential"]
LastFrame = Literal["auto", "off"]

ENV_VARS = (
    "LIVINGPHOTO_DIFFUSERS_DEVICE",
    "LIVINGPHOTO_DIFFUSERS_STEPS",
    "LIVINGPHOTO_DIFFUSERS_GUIDANCE",
    "LIVINGPHOTO_DIFFUSERS_COMPILE",
    "LIVINGPHOTO_DIFFUSERS_OFFLOAD",
    "LIVINGPHOTO_DIFFUSERS_VRAM_HEADROOM_GB",
    "LIVINGPHOTO_DIFFUSERS_VAE_TILING_PX",
    "LIVINGPHOTO_DIFFUSERS_MAX_BATCH",
    "LIVINGPHOTO_DIFFUSERS_LAST_FRAME",
    "LIVINGPHOTO_DIFFUSERS_MAX_TOKENS",
)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(env, name, default).lower()
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class DiffusersSettings:
    device: Device = "auto"
    steps: int = 0  # 0: family default
    guidance_scale: float | None = None  # None: family default
    compile: bool = False
    offload: Offload = "auto"
    vram_headroom_gb: float = 8.0
    vae_tiling_px: int = 768
    max_batch: int = 0  # 0: every variation of a request in one call
    last_frame: LastFrame = "auto"
    max_tokens: int = 128

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DiffusersSettings:
        guidance_raw = env.get("LIVINGPHOTO_DIFFUSERS_GUIDANCE", "").strip()
        return cls(
            device=cast(
                Device,
                _choice(env, "LIVINGPHOTO_DIFFUSERS_DEVICE", cls.device, ("auto", "cuda", "cpu")),
            ),
            steps=env_int(env, "LIVINGPHOTO_DIFFUSERS_STEPS", cls.steps, minimum=0),
            guidance_scale=(
                env_float(env, "LIVINGPHOTO_DIFFUSERS_GUIDANCE", 1.0, minimum=0.0)
                if guidance_raw
                else None
            ),
            compile=env_bool(env, "LIVINGPHOTO_DIFFUSERS_COMPILE", cls.compile),
            offload=cast(
                Offload,
                _choice(
                    env,
                    "LIVINGPHOTO_DIFFUSERS_OFFLOAD",
                    cls.offload,
                    ("auto", "none", "model", "sequential"),
                ),
            ),
            vram_headroom_gb=env_float(
                env, "LIVINGPHOTO_DIFFUSERS_VRAM_HEADROOM_GB", cls.vram_headroom_gb, minimum=0.0
            ),
            vae_tiling_px=env_int(
                env, "LIVINGPHOTO_DIFFUSERS_VAE_TILING_PX", cls.vae_tiling_px, minimum=32
            ),
            max_batch=env_int(env, "LIVINGPHOTO_DIFFUSERS_MAX_BATCH", cls.max_batch, minimum=0),
            last_frame=cast(
                LastFrame,
                _choice(env, "LIVINGPHOTO_DIFFUSERS_LAST_FRAME", cls.last_frame, ("auto", "off")),
            ),
            max_tokens=env_int(env, "LIVINGPHOTO_DIFFUSERS_MAX_TOKENS", cls.max_tokens, minimum=8),
        )
