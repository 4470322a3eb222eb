"""The image-to-video model families the diffusers backend drives, chosen by ``model_index.json``.

Each family knows its pipeline class, how to size a request for it (frame-count and side
constraints, native frame rate) and how to make one batched pipeline call:

- LTX-Video (``LTXConditionPipeline``): text + image; the photo is conditioned at frame 0 and at
  the frame just after the last one kept, so the loop closes natively. Frames ``8k+1`` (the VAE's
  temporal ratio), sides divisible by 32.
- Wan 2.1/2.2 (``WanImageToVideoPipeline``): text + image; ``last_image=`` closes the loop where the
  checkpoint supports first-last-frame conditioning (FLF2V's image position embedding, or Wan 2.2's
  transformers without an image encoder); otherwise the loop is repaired. Frames ``4k+1`` at 16 fps.
- Stable Video Diffusion: image only; motion from the spec's energy (motion bucket, noise
  augmentation). Generates its native frame count at ~7 fps; the loop is repaired.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from generation.backend import RenderRequest
from generation.backends.diffusers_settings import DiffusersSettings
from generation.prompting import PromptPair, SvdConditioning
from livingphoto.errors import UsageError

# callback_on_step_end(pipe, step, timestep, callback_kwargs) -> tensors to replace
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]

# Timesteps diffusers documents for the LTX-Video distilled checkpoints (guidance 1.0).
LTX_DISTILLED_TIMESTEPS = (1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03)
WAN_FPS = 16
SVD_FPS = 7


class Family(StrEnum):
    LTX = "ltx"
    WAN = "wan"
    SVD = "svd"


PIPELINE_FAMILIES: dict[str, Family] = {
    "LTXConditionPipeline": Family.LTX,
    "LTXImageToVideoPipeline": Family.LTX,
    "LTXPipeline": Family.LTX,
    "WanImageToVideoPipeline": Family.WAN,
    "StableVideoDiffusionPipeline": Family.SVD,
}


@dataclass(frozen=True)
class ModelInfo:
    model: str  # hub id, local directory or single-file checkpoint, as given
    class_name: str  # model_index.json "_class_name"
    family: Family
    single_file: bool = False  # an original-format LTX-Video checkpoint (.safetensors)


def is_single_file(model: str) -> bool:
    """A ``.safetensors`` checkpoint (URL or path) rather than a diffusers pipeline folder/repo."""
    return model.split("?", 1)[0].lower().endswith(".safetensors")


def _looks_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") != 1


def read_model_index(model: str) -> dict[str, Any]:
    """The ``model_index.json`` of a local pipeline folder, or of a hub id (that file only)."""
    path = Path(model).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise UsageError(f"{model} is not a diffusers pipeline folder (no model_index.json)")
    elif path.exists() or _looks_local(model):
        raise UsageError(f"model folder {model} does not exist")
    else:
        from huggingface_hub import hf_hub_download

        try:
            index = Path(hf_hub_download(repo_id=model, filename="model_index.json"))
        except (OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(
                f"cannot read model_index.json of model {model!r}: {reason[:200]}"
            ) from None
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UsageError(f"model_index.json of {model} is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"model_index.json of {model} is not a JSON object")
    return data


def detect_family(model: str) -> ModelInfo:
    """Which family ``model`` belongs to, from its own ``model_index.json``.

    A single ``.safetensors`` checkpoint has no ``model_index.json``: it is read as an original
    LTX-Video checkpoint (diffusers' ``from_single_file`` infers its architecture from the keys).
    """
    if is_single_file(model):
        if not model.startswith(("https://", "http://")) and not Path(model).expanduser().is_file():
            raise UsageError(f"model file {model} does not exist")
        return ModelInfo(model, "LTXConditionPipeline", Family.LTX, single_file=True)
    index = read_model_index(model)
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or not class_name:
        raise UsageError(f"model_index.json of {model} names no pipeline class")
    family = PIPELINE_FAMILIES.get(class_name)
    if family is None:
        raise UsageError(
            f"model {model} is a {class_name}; the diffusers backend needs an image-to-video "
            "LTX-Video, Wan or Stable Video Diffusion pipeline"
        )
    return ModelInfo(model=model, class_name=class_name, family=family)


@dataclass(frozen=True)
class GenPlan:
    """How one request is generated by one family."""

    width: int  # generation size (the model's constraints); takes are resized back
    height: int
    num_frames: int  # frames the pipeline generates
    loop_frames: int  # leading frames that form the loop (native) or the clip to repair
    native_loop: bool  # True: the last frame is conditioned on the photo
    fps: int  # frame rate the frames are generated at
    steps: int
    guidance_scale: float

    def to_json(self) -> dict[str, Any]:
        return {
            "generated_size": [self.width, self.height],
            "generated_frames": self.num_frames,
            "generated_fps": self.fps,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
        }


def fit_side(side: int, multiple: int) -> int:
    """``side`` rounded to the nearest positive multiple of ``multiple``."""
    return max(multiple, round(side / multiple) * multiple)


def frames_at_least(minimum: int, ratio: int) -> int:
    """The smallest ``ratio * k + 1`` that is >= ``minimum``."""
    k = max(0, math.ceil((minimum - 1) / ratio))
    return ratio * k + 1


def to_uint8_videos(videos: Any) -> NDArray[np.uint8]:
    """Pipeline ``output_type="np"`` frames (B, T, H, W, 3) floats in 0..1 -> uint8."""
    array = np.asarray(videos, dtype=np.float32)
    if array.ndim != 5 or array.shape[-1] != 3:
        raise ValueError(f"unexpected video output shape {array.shape}")
    result: NDArray[np.uint8] = np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)
    return result


class FamilyAdapter(Protocol):
    @property
    def family(self) -> Family: ...

    @property
    def text_conditioned(self) -> bool: ...

    def plan(self, pipe: Any, request: RenderRequest) -> GenPlan: ...

    def generate(
        self,
        pipe: Any,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        generators: list[Any],
        callback: StepCallback,
    ) -> NDArray[np.uint8]: ...


def _size(request: RenderRequest, multiple: int) -> tuple[int, int]:
    h, w = request.image.shape[:2]
    return fit_side(w, multiple), fit_side(h, multiple)


@dataclass(frozen=True)
class LtxAdapter:
    """LTX-Video through ``LTXConditionPipeline`` with first- and last-frame conditioning."""

    settings: DiffusersSettings
    distilled: bool
    family: Family = Family.LTX
    text_conditioned: bool = True

    def plan(self, pipe: Any, request: RenderRequest) -> GenPlan:
        width, height = _size(request, 32)
        ratio = int(pipe.vae_temporal_compression_ratio)
        native = self.settings.last_frame == "auto"
        # Native: at least one frame past the loop, the photo again. Repaired: room to trim.
        minimum = request.frames + 1 if native else math.ceil(request.frames * 1.35)
        num_frames = frames_at_least(minimum, ratio)
        steps = self.settings.steps or (len(LTX_DISTILLED_TIMESTEPS) if self.distilled else 30)
        default_guidance = 1.0 if self.distilled else 3.0
        guidance = (
            self.settings.guidance_scale
            if self.settings.guidance_scale is not None
            else default_guidance
        )
        return GenPlan(
            width=width,
            height=height,
            num_frames=num_frames,
            loop_frames=request.frames if native else num_frames,
            native_loop=native,
            fps=request.fps,
            steps=steps,
            guidance_scale=guidance,
        )

    def generate(
        self,
        pipe: Any,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        generators: list[Any],
        callback: StepCallback,
    ) -> NDArray[np.uint8]:
        import torch
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        assert prompt is not None
        n = len(generators)
        # One conditioning tensor per batch item (the pipeline encodes conditions per sample).
        pixels = (
            torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0)
        )
        # A (N, 3, H, W) tensor in 0..1: the pipeline's image processor takes tensors as well.
        batch: Any = pixels.unsqueeze(0).repeat(n, 1, 1, 1)
        conditions = [LTXVideoCondition(image=batch, frame_index=0)]
        if plan.native_loop:
            conditions.append(LTXVideoCondition(image=batch, frame_index=plan.loop_frames))
        schedule: dict[str, Any]
        if self.distilled and not self.settings.steps:
            schedule = {"timesteps": list(LTX_DISTILLED_TIMESTEPS)}
        else:
            schedule = {"num_inference_steps": plan.steps}
        output = pipe(
            conditions=conditions,
            prompt=[prompt.prompt] * n,
            negative_prompt=[prompt.negative_prompt] * n,
            height=plan.height,
            width=plan.width,
            num_frames=plan.num_frames,
            frame_rate=plan.fps,
            guidance_scale=plan.guidance_scale,
            decode_timestep=0.05,
            decode_noise_scale=0.025,
            image_cond_noise_scale=0.025,
            generator=generators,
            output_type="np",
            callback_on_step_end=callback,
            max_sequence_length=self.settings.max_tokens,
            **schedule,
        )
        return to_uint8_videos(output.frames)


@dataclass(frozen=True)
class WanAdapter:
    """Wan 2.1/2.2 through ``WanImageToVideoPipeline``; ``last_image=`` where supported."""

    settings: DiffusersSettings
    family: Family = Family.WAN
    text_conditioned: bool = True

    @staticmethod
    def last_image_mode(pipe: Any) -> Literal["required", "optional", "unsupported"]:
        """Whether the checkpoint takes ``last_image=`` (first-last-frame conditioning).

        FLF2V checkpoints embed two CLIP images (first and last) and need it; Wan 2.2's
        transformers take no CLIP embeds and accept it; Wan 2.1 I2V embeds one image only, and
        Wan 2.2 TI2V (``expand_timesteps``) conditions the first latent frame only.
        """
        if bool(getattr(pipe.config, "expand_timesteps", False)):
            return "unsupported"
        transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        config = transformer.config
        if getattr(config, "pos_embed_seq_len", None) is not None:
            return "required"
        return "optional" if config.image_dim is None else "unsupported"

    def plan(self, pipe: Any, request: RenderRequest) -> GenPlan:
        transformer = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
        multiple = int(pipe.vae_scale_factor_spatial) * int(transformer.config.patch_size[1])
        width, height = _size(request, multiple)
        ratio = int(pipe.vae_scale_factor_temporal)
        seconds = request.frames / request.fps
        loop = max(ratio, round(seconds * WAN_FPS / ratio) * ratio)
        mode = self.last_image_mode(pipe)
        native = mode == "required" or (mode == "optional" and self.settings.last_frame == "auto")
        # Native: the frame after the loop is the photo. Repaired: extra frames to trim from.
        num_frames = loop + 1 if native else frames_at_least(math.ceil(loop * 1.35), ratio)
        return GenPlan(
            width=width,
            height=height,
            num_frames=num_frames,
            loop_frames=loop if native else num_frames,
            native_loop=native,
            fps=WAN_FPS,
            steps=self.settings.steps or 40,
            guidance_scale=(
                self.settings.guidance_scale if self.settings.guidance_scale is not None else 5.0
            ),
        )

    def generate(
        self,
        pipe: Any,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        generators: list[Any],
        callback: StepCallback,
    ) -> NDArray[np.uint8]:
        assert prompt is not None
        n = len(generators)
        output = pipe(
            image=image,
            last_image=image if plan.native_loop else None,
            prompt=[prompt.prompt] * n,
            negative_prompt=[prompt.negative_prompt] * n,
            height=plan.height,
            width=plan.width,
            num_frames=plan.num_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            generator=generators,
            output_type="np",
            callback_on_step_end=callback,
            max_sequence_length=self.settings.max_tokens,
        )
        return to_uint8_videos(output.frames)


@dataclass(frozen=True)
class SvdAdapter:
    """Stable Video Diffusion: image only, its native frame count, loop repaired afterwards."""

    settings: DiffusersSettings
    family: Family = Family.SVD
    text_conditioned: bool = False

    def plan(self, pipe: Any, request: RenderRequest) -> GenPlan:
        levels = len(pipe.unet.config.block_out_channels) - 1
        width, height = _size(request, int(pipe.vae_scale_factor) * 2**levels)
        num_frames = int(pipe.unet.config.num_frames)
        return GenPlan(
            width=width,
            height=height,
            num_frames=num_frames,
            loop_frames=num_frames,
            native_loop=False,
            fps=SVD_FPS,
            steps=self.settings.steps or 25,
            guidance_scale=(
                self.settings.guidance_scale if self.settings.guidance_scale is not None else 3.0
            ),
        )

    def generate(
        self,
        pipe: Any,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        generators: list[Any],
        callback: StepCallback,
    ) -> NDArray[np.uint8]:
        assert svd is not None
        output = pipe(
            image=image,
            height=plan.height,
            width=plan.width,
            num_frames=plan.num_frames,
            num_inference_steps=plan.steps,
            min_guidance_scale=1.0,
            max_guidance_scale=max(1.0, plan.guidance_scale),
            fps=plan.fps,
            motion_bucket_id=svd.motion_bucket_id,
            noise_aug_strength=svd.noise_aug_strength,
            decode_chunk_size=8,
            num_videos_per_prompt=len(generators),
            generator=generators,
            output_type="np",
            callback_on_step_end=callback,
        )
        return to_uint8_videos(output.frames)


def make_adapter(info: ModelInfo, settings: DiffusersSettings) -> FamilyAdapter:
    if info.family is Family.LTX:
        return LtxAdapter(settings=settings, distilled="distilled" in info.model.lower())
    if info.family is Family.WAN:
        return WanAdapter(settings=settings)
    return SvdAdapter(settings=settings)


def pipeline_class(family: Family) -> Any:
    """The diffusers pipeline class that loads ``family`` (LTX always as the condition pipeline)."""
    import diffusers

    names = {
        Family.LTX: "LTXConditionPipeline",
        Family.WAN: "WanImageToVideoPipeline",
        Family.SVD: "StableVideoDiffusionPipeline",
    }
    return getattr(diffusers, names[family])
