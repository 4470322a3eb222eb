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
| `LIVINGPHOTO_DIFFUSERS_MAX_TOKENS` | text tokens sent to the text encoder (LTX-2: rounded up to a multiple of 128) |
| `LIVINGPHOTO_DIFFUSERS_FP8_WEIGHTS` | `true`: keep the denoiser's and text encoder's weights in float8 (e4m3), cast to bf16 layer by layer as they run: about half their memory, a few percent slower, slightly different output |
| `LIVINGPHOTO_DIFFUSERS_DISTILLED` | `auto` ("distilled" in the model id or folder name), `true` or `false`: distilled models run their few-step schedule with every guidance scale neutral |
| `LIVINGPHOTO_DIFFUSERS_LATENT_BUDGET` | LTX/LTX-2: most latent tokens per clip (size and frame rate are lowered to fit, the take is resized and retimed after); `-1` = auto: none on CUDA, 2048 on the CPU; `0` = none |

On the CPU (no CUDA device), a render is a preview: unless `LIVINGPHOTO_DIFFUSERS_STEPS` is set it
runs at most `CPU_STEPS` steps, and LTX/LTX-2 keep to `CPU_LATENT_BUDGET` latent tokens per clip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal, cast

from livingphoto.env import env_bool, env_float, env_int, env_str
from livingphoto.errors import UsageError

Device = Literal["auto", "cuda", "cpu"]
Offload = Literal["auto", "none", "model", "sequential"]
LastFrame = Literal["auto", "off"]
Distilled = Literal["auto", "true", "false"]

# The CPU preview (see the module docstring).
CPU_STEPS = 4
CPU_LATENT_BUDGET = 2048

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
    "LIVINGPHOTO_DIFFUSERS_DISTILLED",
    "LIVINGPHOTO_DIFFUSERS_LATENT_BUDGET",
    "LIVINGPHOTO_DIFFUSERS_FP8_WEIGHTS",
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
    distilled: Distilled = "auto"
    latent_budget: int = -1  # -1: auto (none on CUDA, CPU_LATENT_BUDGET on the CPU); 0: none
    fp8_weights: bool = False  # float8 weight storage for the denoiser and the text encoder

    def is_distilled(self, model: str) -> bool:
        """Whether ``model`` is a distilled checkpoint (the setting, else its id or folder name)."""
        if self.distilled == "auto":
            return "distilled" in model.lower()
        return self.distilled == "true"

    def for_device(self, device: str) -> DiffusersSettings:
        """The settings a render on ``device`` uses: on the CPU, the preview limits fill in."""
        if device != "cpu":
            return replace(self, latent_budget=max(0, self.latent_budget))
        return replace(
            self,
            steps=self.steps or CPU_STEPS,
            latent_budget=CPU_LATENT_BUDGET if self.latent_budget < 0 else self.latent_budget,
        )

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
            distilled=cast(
                Distilled,
                _choice(
                    env, "LIVINGPHOTO_DIFFUSERS_DISTILLED", cls.distilled, ("auto", "true", "false")
                ),
            ),
            latent_budget=env_int(
                env, "LIVINGPHOTO_DIFFUSERS_LATENT_BUDGET", cls.latent_budget, minimum=-1
            ),
            fp8_weights=env_bool(env, "LIVINGPHOTO_DIFFUSERS_FP8_WEIGHTS", cls.fp8_weights),
        )
