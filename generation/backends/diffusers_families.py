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
- LTX-2 (hub folders name ``LTX2Pipeline``; loaded as ``LTX2ConditionPipeline``): text + image,
  Gemma 3 text encoder. The photo is conditioned at latent index 0 and -1; LTX-2 places a
  keyframe at latent index ``k`` at pixel frame ``(k - 1) * r + 1`` (``r`` the VAE's temporal
  ratio), so index -1 lands ``r`` frames before the end and the loop is the ``8k+1`` frames before
  it. The audio it denoises alongside is discarded. The still-image condition is re-compressed
  with H.264 at the model's training CRF by ffmpeg (not PyAV) and passed with ``crf=0``.

``generate`` returns float32 frames in 0..1 exactly as decoded (NaN/inf kept), so the backend can
check them (``generation.frame_check``) before they become uint8.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from generation.backend import RenderRequest
from generation.backends.diffusers_hub import HubAccess, hub_access, not_cached_message
from generation.backends.diffusers_settings import DiffusersSettings
from generation.prompting import PromptPair, SvdConditioning
from livingphoto.errors import UsageError

# callback_on_step_end(pipe, step, timestep, callback_kwargs) -> tensors to replace
StepCallback = Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]

# Timesteps diffusers documents for the LTX-Video distilled checkpoints (guidance 1.0).
LTX_DISTILLED_TIMESTEPS = (1000.0, 993.0, 987.0, 981.0, 975.0, 909.0, 725.0, 0.03)
# The LTX-2 distilled schedule (diffusers' ltx2 DISTILLED_SIGMA_VALUES; guidance 1.0, no STG).
LTX2_DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875)
# H.264 CRF LTX-2.0-2.3 conditions were compressed with in training.
LTX2_IMAGE_CRF = 33
WAN_FPS = 16
SVD_FPS = 7


class Family(StrEnum):
    LTX = "ltx"
    WAN = "wan"
    SVD = "svd"
    LTX2 = "ltx2"


PIPELINE_FAMILIES: dict[str, Family] = {
    "LTX2Pipeline": Family.LTX2,
    "LTX2ImageToVideoPipeline": Family.LTX2,
    "LTX2ConditionPipeline": Family.LTX2,
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
    offline: str = ""  # why the hub cannot be used ("HF_HUB_OFFLINE is set", …); "" = it can


def is_single_file(model: str) -> bool:
    """A ``.safetensors`` checkpoint (URL or path) rather than a diffusers pipeline folder/repo."""
    return model.split("?", 1)[0].lower().endswith(".safetensors")


def _looks_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or "\\" in model or model.count("/") != 1


def read_model_index(model: str, access: HubAccess | None = None) -> dict[str, Any]:
    """The ``model_index.json`` of a local pipeline folder, or of a hub id (that file only).

    ``access`` (hub ids only; default: ``hub_access()``) says whether to use the cache only.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise UsageError(f"{model} is not a diffusers pipeline folder (no model_index.json)")
    elif path.exists() or _looks_local(model):
        raise UsageError(f"model folder {model} does not exist")
    else:
        from huggingface_hub import hf_hub_download

        access = access or hub_access()
        try:
            index = Path(
                hf_hub_download(
                    repo_id=model, filename="model_index.json", local_files_only=access.offline
                )
            )
        except (OSError, ValueError) as exc:
            if access.offline:
                raise UsageError(not_cached_message(model, access)) from None
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
    Hub ids and URLs are checked for reachability first (``diffusers_hub``): unreachable or
    ``HF_HUB_OFFLINE`` means the local cache only, and ``ModelInfo.offline`` says why.
    """
    if is_single_file(model):
        remote = model.startswith(("https://", "http://"))
        if not remote and not Path(model).expanduser().is_file():
            raise UsageError(f"model file {model} does not exist")
        access = hub_access() if remote else HubAccess(offline=False, reason="")
        return ModelInfo(
            model, "LTXConditionPipeline", Family.LTX, single_file=True, offline=access.reason
        )
    local = Path(model).expanduser().exists() or _looks_local(model)
    access = HubAccess(offline=False, reason="") if local else hub_access()
    index = read_model_index(model, access)
    class_name = index.get("_class_name")
    if not isinstance(class_name, str) or not class_name:
        raise UsageError(f"model_index.json of {model} names no pipeline class")
    family = PIPELINE_FAMILIES.get(class_name)
    if family is None:
        raise UsageError(
            f"model {model} is a {class_name}; the diffusers backend needs an image-to-video "
            "LTX-Video, LTX-2, Wan or Stable Video Diffusion pipeline"
        )
    return ModelInfo(model=model, class_name=class_name, family=family, offline=access.reason)


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


def as_videos(videos: Any) -> NDArray[np.float32]:
    """Pipeline ``output_type="np"`` frames as float32 (B, T, H, W, 3) in 0..1 (NaN/inf kept)."""
    array = np.asarray(videos, dtype=np.float32)
    if array.ndim != 5 or array.shape[-1] != 3:
        raise ValueError(f"unexpected video output shape {array.shape}")
    return array


def to_uint8(clip: NDArray[np.floating[Any]]) -> NDArray[np.uint8]:
    """Float frames in 0..1 -> uint8 (non-finite values become 0; check them first)."""
    finite = np.nan_to_num(clip, nan=0.0, posinf=1.0, neginf=0.0)
    result: NDArray[np.uint8] = np.clip(np.rint(finite * 255.0), 0, 255).astype(np.uint8)
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
    ) -> NDArray[np.float32]: ...


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
        compression = int(pipe.vae_spatial_compression_ratio) * int(
            getattr(pipe, "transformer_spatial_patch_size", 1)
        )
        multiple = math.lcm(32, compression)
        width, height = _size(request, multiple)
        budget = self.settings.latent_budget
        width, height, per_frame = fit_budget(width, height, multiple, compression, budget)
        ratio = int(pipe.vae_temporal_compression_ratio)
        native = self.settings.last_frame == "auto"
        loop = request.frames
        if budget > 0:  # fewer frames at a lower frame rate; the take is retimed after
            loop = min(loop, ratio * max(1, budget // max(1, per_frame) - 1))
        fps = (
            request.fps
            if loop == request.frames
            else max(1, round(loop * request.fps / request.frames))
        )
        # Native: at least one frame past the loop, the photo again. Repaired: room to trim.
        minimum = loop + 1 if native else math.ceil(loop * 1.35)
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
            loop_frames=loop if native else num_frames,
            native_loop=native,
            fps=fps,
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
    ) -> NDArray[np.float32]:
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
        return as_videos(output.frames)


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
    ) -> NDArray[np.float32]:
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
        return as_videos(output.frames)


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
    ) -> NDArray[np.float32]:
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
        return as_videos(output.frames)


def fit_budget(
    width: int, height: int, multiple: int, compression: int, budget: int
) -> tuple[int, int, int]:
    """``(width, height, tokens per frame)`` shrunk so a frame has at most ``budget // 8`` tokens.

    Sides stay multiples of ``multiple``; ``compression`` is pixels per latent token along a side.
    ``budget`` 0 keeps the size.
    """

    def tokens(w: int, h: int) -> int:
        return (w // compression) * (h // compression)

    if budget <= 0:
        return width, height, tokens(width, height)
    per_frame = max(1, budget // 8)
    scale = 1.0
    w, h = width, height
    while tokens(w, h) > per_frame and (w > multiple or h > multiple):
        scale *= 0.9
        w, h = fit_side(round(width * scale), multiple), fit_side(round(height * scale), multiple)
    return w, h, tokens(w, h)


@dataclass(frozen=True)
class Ltx2Adapter:
    """LTX-2 through ``LTX2ConditionPipeline``: the photo at latent index 0 and -1, audio discarded."""

    settings: DiffusersSettings
    distilled: bool
    family: Family = Family.LTX2
    text_conditioned: bool = True

    def plan(self, pipe: Any, request: RenderRequest) -> GenPlan:
        compression = int(pipe.vae_spatial_compression_ratio) * int(
            pipe.transformer_spatial_patch_size
        )
        ratio = int(pipe.vae_temporal_compression_ratio) * int(pipe.transformer_temporal_patch_size)
        multiple = math.lcm(32, compression)
        width, height = _size(request, multiple)
        budget = self.settings.latent_budget
        width, height, per_frame = fit_budget(width, height, multiple, compression, budget)
        seconds = request.frames / request.fps
        native = self.settings.last_frame == "auto"
        # The loop: ratio*k + 1 frames; native: index -1 puts the photo right after it.
        loop = frames_at_least(request.frames, ratio)
        if budget > 0:
            # Latent frames: (loop - 1) / ratio + 1, plus one for the frames after the loop.
            most = max(1, budget // max(1, per_frame) - 2)
            loop = min(loop, ratio * most + 1)
        num_frames = loop + ratio if native else frames_at_least(math.ceil(loop * 1.35), ratio)
        steps = max(
            2, self.settings.steps or (len(LTX2_DISTILLED_SIGMAS) if self.distilled else 30)
        )
        guidance = (
            1.0
            if self.distilled
            else (self.settings.guidance_scale if self.settings.guidance_scale is not None else 3.0)
        )
        return GenPlan(
            width=width,
            height=height,
            num_frames=num_frames,
            loop_frames=loop if native else num_frames,
            native_loop=native,
            fps=max(1, round(loop / seconds)),
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
    ) -> NDArray[np.float32]:
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
        from diffusers.utils import logging as diffusers_logging

        assert prompt is not None
        # One generator per variation is what we want (randn_tensor honours the list); the
        # pipeline warns that its VAE encode of the condition uses only the first one.
        diffusers_logging.get_logger(type(pipe).__module__).setLevel(logging.ERROR)
        n = len(generators)
        photo, _crf = training_compressed(image, LTX2_IMAGE_CRF)
        conditions = [LTX2VideoCondition(frames=photo, index=0, crf=0)]
        if plan.native_loop:
            conditions.append(LTX2VideoCondition(frames=photo, index=-1, crf=0))
        schedule: dict[str, Any]
        if self.distilled and not self.settings.steps:
            schedule = {"sigmas": list(LTX2_DISTILLED_SIGMAS)}
        else:
            schedule = {"num_inference_steps": plan.steps}
        guided = plan.guidance_scale > 1.0
        output = pipe(
            conditions=conditions,
            prompt=[prompt.prompt] * n,
            negative_prompt=[prompt.negative_prompt] * n if guided else None,
            height=plan.height,
            width=plan.width,
            num_frames=plan.num_frames,
            frame_rate=float(plan.fps),
            guidance_scale=plan.guidance_scale,
            audio_guidance_scale=plan.guidance_scale,
            # STG and modality-isolation guidance each cost one more transformer pass per step:
            # off (neutral), like the distilled recipe.
            stg_scale=0.0,
            audio_stg_scale=0.0,
            modality_scale=1.0,
            audio_modality_scale=1.0,
            guidance_rescale=0.7 if guided else 0.0,
            audio_guidance_rescale=0.7 if guided else 0.0,
            spatio_temporal_guidance_blocks=None,
            generator=generators,
            output_type="np",
            callback_on_step_end=callback,
            max_sequence_length=max(128, math.ceil(self.settings.max_tokens / 128) * 128),
            **schedule,
        )
        del output.audio  # denoised alongside the video; a looping clip has no sound
        return as_videos(output.frames)


def training_compressed(image: Any, crf: int) -> tuple[Any, int]:
    """``image`` (PIL, RGB) round-tripped through one H.264 frame at ``crf``, and the CRF used.

    LTX-2 was trained on conditions compressed like this. Uses the ffmpeg executable of
    ``imageio-ffmpeg`` (or ``IMAGEIO_FFMPEG_EXE``/the system one); without one the image is
    returned as it is with CRF 0.
    """
    import subprocess

    from PIL import Image

    try:
        import imageio_ffmpeg

        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        import shutil

        found = shutil.which("ffmpeg")
        if found is None:
            return image, 0
        exe = found
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    raw = np.ascontiguousarray(rgb[:h, :w]).tobytes()
    common = ["-hide_banner", "-loglevel", "error"]
    try:
        encoded = subprocess.run(
            [exe, *common, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-f", "h264", "-"],
            input=raw, capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        decoded = subprocess.run(
            [exe, *common, "-f", "h264", "-i", "-", "-frames:v", "1", "-f", "rawvideo",
             "-pix_fmt", "rgb24", "-"],
            input=encoded, capture_output=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return image, 0
    if len(decoded) != h * w * 3:
        return image, 0
    frame: NDArray[np.uint8] = rgb.copy()  # odd sides keep their last row/column as they were
    frame[:h, :w] = np.frombuffer(decoded, dtype=np.uint8).reshape(h, w, 3)
    return Image.fromarray(frame), crf


def make_adapter(info: ModelInfo, settings: DiffusersSettings) -> FamilyAdapter:
    """The adapter for ``info``'s family; ``settings`` are those of the device (``for_device``)."""
    if info.family is Family.LTX2:
        return Ltx2Adapter(settings=settings, distilled=settings.is_distilled(info.model))
    if info.family is Family.LTX:
        return LtxAdapter(settings=settings, distilled=settings.is_distilled(info.model))
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
        # Hub folders name LTX2Pipeline (text-to-video); the same components make the
        # condition pipeline, which takes first- and last-frame conditions.
        Family.LTX2: "LTX2ConditionPipeline",
    }
    return getattr(diffusers, names[family])
