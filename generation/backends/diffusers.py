"""The GPU backend: real AI motion from a photo and a motion prompt, through diffusers.

Usage::

    backend = DiffusersBackend(model=None)   # default: LTX-Video 2B distilled (DEFAULT_MODEL)
    backend.setup()                          # loads weights once per process
    takes = backend.render(request, progress, cancel)

The model family (LTX-Video, LTX-2, Wan, SVD) comes from the model's own ``model_index.json`` (a
hub id or a local folder; a single ``.safetensors`` checkpoint is read as LTX-Video; see
``diffusers_families``). Hub ids are reached through ``diffusers_hub``: offline or unreachable
means the local cache only, and a model missing there is one line naming the cause and the fix.
Settings (device, steps, compile, offload, fp8 weights, tiling, batch size, the CPU preview
budget) come from ``DiffusersSettings``.

``render`` makes every variation of a request in ONE pipeline call, one seeded generator per
variation (variation k uses ``request.seed + k - 1``); a CUDA out-of-memory error halves the batch
and retries, and a batch of one that still does not fit turns on CPU offload once before giving
up. Progress and cancellation run through the pipeline's ``callback_on_step_end``; ``Cancelled``
is always re-raised. Decoded frames are checked (``generation.frame_check``): takes with NaN/inf
or flat frames are made again once with the VAE in float32, and those that fail again come back
with ``Take.info["failed"]`` (the reason), which the shared path drops with a warning. Takes are
uint8 RGB (T, H, W, 3) at the request's size and frame count; a native loop whose seam is still
visible is repaired. ``Take.info`` says what was sent to the model (prompt, negative prompt or SVD
conditioning) and how the loop was closed. Export and scoring happen after, on the one path
every backend shares (``generation.animator``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from generation.backend import (
    CancelToken,
    Frames,
    ProgressFn,
    RenderRequest,
    Take,
    no_progress,
)
from generation.backends.diffusers_families import (
    PIPELINE_FAMILIES,
    FamilyAdapter,
    GenPlan,
    ModelInfo,
    detect_family,
    make_adapter,
    pipeline_class,
    to_uint8,
)
from generation.backends.diffusers_hub import HubAccess, not_cached_message
from generation.backends.diffusers_settings import DiffusersSettings
from generation.frame_check import clip_fault
from generation.loop_repair import repair_loop, retime_loop
from generation.prompting import PromptPair, SvdConditioning, build_prompt, svd_conditioning
from generation.quality import loop_seam
from livingphoto.errors import Cancelled, GenerationFailed, UsageError

log = logging.getLogger(__name__)

# LTX-Video 2B 0.9.8, guidance- and timestep-distilled. Lightricks publish the 2B checkpoints as
# single files (transformer + VAE; diffusers' from_single_file maps them to the 0.9.5 architecture
# and fetches the T5 encoder from Lightricks/LTX-Video-0.9.5). The distilled checkpoint diffusers
# documents in its own folder format is the 13B one: LTX_13B_DISTILLED.
DEFAULT_MODEL = (
    "https://huggingface.co/Lightricks/LTX-Video/blob/main/ltxv-2b-0.9.8-distilled.safetensors"
)
LTX_13B_DISTILLED = "Lightricks/LTX-Video-0.9.7-distilled"

# Decoded clips as float32 (T, H, W, 3) in 0..1, NaN/inf kept until checked.
VideoArray = NDArray[np.float32]
# A native loop whose seam is larger than this (quality.loop_seam) is repaired after all.
NATIVE_SEAM_LIMIT = 0.5

# Called with the batch size just before each pipeline call. Diagnostics and tests use it to
# inject failures (e.g. raise torch.cuda.OutOfMemoryError) on the real code path.
BeforeCall = Callable[[int], None]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _resize(frames: Frames, width: int, height: int) -> Frames:
    if frames.shape[1] == height and frames.shape[2] == width:
        return frames
    shrink = frames.shape[1] * frames.shape[2] > width * height
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=interpolation) for f in frames])


class DiffusersBackend:
    """Image-to-video with LTX-Video, Wan or Stable Video Diffusion (see module docstring)."""

    name = "diffusers"

    def __init__(
        self,
        model: str | None = None,
        settings: DiffusersSettings | None = None,
        before_call: BeforeCall | None = None,
    ) -> None:
        self.model = model or DEFAULT_MODEL
        self.settings = settings if settings is not None else DiffusersSettings.from_env(os.environ)
        self._before_call = before_call
        self._lock = threading.Lock()  # setup
        self._busy = threading.Lock()  # one render at a time on the one pipeline
        self._given: Any = None  # a pipeline handed over by from_pipeline(), not yet placed
        self._pipe: Any = None
        self._info: ModelInfo | None = None
        self._adapter: FamilyAdapter | None = None
        self._device = "cpu"
        self._offloaded = False
        # Batch size of the most recent pipeline calls, oldest first (diagnostics and tests).
        self.calls: deque[int] = deque(maxlen=64)

    @classmethod
    def from_pipeline(
        cls,
        pipe: Any,
        name: str,
        settings: DiffusersSettings | None = None,
        before_call: BeforeCall | None = None,
    ) -> DiffusersBackend:
        """A backend around an already built pipeline (benchmarks build random-weight models).

        ``name`` stands in for the model id in reports (``"distilled"`` in it selects the
        distilled LTX schedule). ``setup()`` then only places and optionally compiles it.
        """
        class_name = type(pipe).__name__
        family = PIPELINE_FAMILIES.get(class_name)
        if family is None:
            raise UsageError(f"{class_name} is not a pipeline the diffusers backend can drive")
        backend = cls(model=name, settings=settings, before_call=before_call)
        backend._info = ModelInfo(model=name, class_name=class_name, family=family)
        backend._given = pipe
        return backend

    # ------------------------------------------------------------------ setup
    @property
    def family(self) -> str:
        """The loaded model's family (``ltx``, ``wan`` or ``svd``); empty before ``setup``."""
        return self._info.family.value if self._info else ""

    def setup(self) -> None:
        """Load the pipeline once: bf16 on CUDA, float32 on CPU; offload only when VRAM is short."""
        with self._lock:
            if self._pipe is not None:
                return
            try:
                import diffusers  # noqa: F401
                import torch
            except ImportError:
                raise UsageError(
                    "the diffusers backend needs the gpu extra: pip install 'livingphoto[gpu]'"
                ) from None
            device = self._pick_device(torch)
            if self._given is not None and self._info is not None:
                info, pipe = self._info, self._given
            else:
                info = detect_family(self.model)
                pipe = self._load(info, torch.bfloat16 if device == "cuda" else torch.float32)
            pipe.set_progress_bar_config(disable=True)
            if self.settings.fp8_weights:
                self._store_in_fp8(pipe, torch)
            self._device = device
            self._place(pipe, torch)
            if self.settings.compile:
                self._compile(pipe)
            self._info = info
            self.settings = self.settings.for_device(device)
            if device == "cpu":
                budget = self.settings.latent_budget
                log.warning(
                    "no CUDA device: a CPU preview (%d steps, %s)",
                    self.settings.steps,
                    f"at most {budget} latent tokens per clip" if budget else "no latent budget",
                )
            self._adapter = make_adapter(info, self.settings)
            self._pipe = pipe
            self._given = None

    def _load(self, info: ModelInfo, dtype: Any) -> Any:
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # Loading bars belong on a developer's terminal, not in CLI output or service logs.
        quiet: list[Any] = [diffusers_logging, transformers_logging]
        for library in quiet:
            library.disable_progress_bar()
        log.info("loading %s (%s)", self.model, info.class_name)
        cls = pipeline_class(info.family)
        # Offline or unreachable hub: the cache only, so nothing waits on network retries.
        local_only = {"local_files_only": True} if info.offline else {}
        try:
            if info.single_file:
                return cls.from_single_file(self.model, dtype=dtype, **local_only)
            return cls.from_pretrained(self.model, dtype=dtype, **local_only)
        except Exception as exc:  # the loading boundary: any failure is one line
            if info.offline:
                access = HubAccess(offline=True, reason=info.offline)
                raise UsageError(not_cached_message(self.model, access)) from None
            raise GenerationFailed(
                f"could not load model {self.model}: {_first_line(exc)}"
            ) from None

    def _pick_device(self, torch: Any) -> str:
        wanted = self.settings.device
        if wanted == "cuda" and not torch.cuda.is_available():
            raise UsageError("LIVINGPHOTO_DIFFUSERS_DEVICE=cuda but no CUDA device is available")
        if wanted == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return wanted

    @staticmethod
    def _host_weight_bytes(pipe: Any) -> int:
        """Bytes of weights not yet on the GPU."""
        total = 0
        for component in pipe.components.values():
            parameters = getattr(component, "parameters", None)
            if callable(parameters):
                total += sum(
                    p.numel() * p.element_size() for p in parameters() if p.device.type != "cuda"
                )
        return total

    def _place(self, pipe: Any, torch: Any) -> None:
        if self._device == "cpu":
            pipe.to("cpu")
            return
        mode = self.settings.offload
        if mode == "auto":
            free, _total = torch.cuda.mem_get_info()
            need = self._host_weight_bytes(pipe) + int(self.settings.vram_headroom_gb * 1024**3)
            mode = "model" if need > free else "none"
            if mode == "model":
                log.warning(
                    "VRAM is short (%.1f GiB free, %.1f GiB wanted): using model CPU offload",
                    free / 1024**3,
                    need / 1024**3,
                )
        if mode == "none":
            pipe.to("cuda")
        elif mode == "model":
            pipe.enable_model_cpu_offload()
            self._offloaded = True
        else:
            pipe.enable_sequential_cpu_offload()
            self._offloaded = True

    @staticmethod
    def _store_in_fp8(pipe: Any, torch: Any) -> None:
        """Keep the denoiser's and text encoder's weights in float8, computing in their dtype.

        diffusers' layerwise casting: each layer's weights are upcast just before it runs
        (norms, embeddings and patch projections stay as they are).
        """
        from diffusers.hooks.layerwise_casting import apply_layerwise_casting

        for name in ("transformer", "transformer_2", "unet", "text_encoder"):
            module = getattr(pipe, name, None)
            if module is None or not isinstance(module, torch.nn.Module):
                continue
            compute = next(module.parameters()).dtype
            if hasattr(module, "enable_layerwise_casting"):
                module.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=compute
                )
            else:
                apply_layerwise_casting(
                    module,
                    storage_dtype=torch.float8_e4m3fn,
                    compute_dtype=compute,
                    skip_modules_pattern=("embed", "norm", "lm_head"),
                )
            log.info("%s: weights stored in float8, computed in %s", name, compute)

    @staticmethod
    def _compile(pipe: Any) -> None:
        """``torch.compile`` the denoiser's repeated blocks (regional compilation)."""
        denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
        if denoiser is not None and getattr(denoiser, "_repeated_blocks", None):
            denoiser.compile_repeated_blocks(fullgraph=True)
        else:
            log.warning("this model has no repeated blocks to compile; running eagerly")

    # ------------------------------------------------------------------ render
    def render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        """All variations in one pipeline call (halving the batch on OOM); loops closed."""
        if request.variations < 1 or request.frames < 2 or request.fps < 1:
            raise UsageError("a render needs at least 1 variation, 2 frames and 1 fps")
        if request.image.ndim != 3 or request.image.shape[2] != 3:
            raise UsageError(f"the photo must be an RGB image, got shape {request.image.shape}")
        self.setup()
        with self._busy:
            return self._render(request, progress, cancel)

    def _render(
        self, request: RenderRequest, progress: ProgressFn, cancel: CancelToken
    ) -> list[Take]:
        cancel.check()
        pipe, adapter, info = self._pipe, self._adapter, self._info
        assert adapter is not None and info is not None
        plan = adapter.plan(pipe, request)
        prompt = build_prompt(request.spec) if adapter.text_conditioned else None
        svd = None if adapter.text_conditioned else svd_conditioning(request.spec)
        image = self._condition_image(request, plan)
        self._set_tiling(pipe, plan)

        seeds = [request.seed + k for k in range(request.variations)]
        progress(0.0, "denoising")
        videos = self._generate(pipe, adapter, plan, image, prompt, svd, seeds, progress, cancel)
        faults = {k: fault for k, (video, _) in enumerate(videos) if (fault := clip_fault(video))}
        retried: set[int] = set()
        if faults:
            videos, faults, retried = self._retry_in_float32(
                pipe, adapter, plan, image, prompt, svd, seeds, videos, faults, cancel
            )

        progress(0.97, "looping")
        takes = [
            self._finish(
                video, seed, request, plan, info, prompt, svd, size,
                faults.get(k), k in retried,
            )
            for k, ((video, size), seed) in enumerate(zip(videos, seeds, strict=True))
        ]  # fmt: skip
        progress(1.0, "done")
        return takes

    def _generate(
        self,
        pipe: Any,
        adapter: FamilyAdapter,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        seeds: list[int],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> list[tuple[VideoArray, int]]:
        """One clip per seed, as few pipeline calls as memory allows (halving the batch on OOM)."""
        info = self._info
        assert info is not None
        videos: list[tuple[VideoArray, int]] = []  # (clip, size of the batch it came from)
        batch = min(len(seeds), self.settings.max_batch or len(seeds))
        while len(videos) < len(seeds):
            cancel.check()
            chunk = seeds[len(videos) : len(videos) + batch]
            out: list[VideoArray] | None = None
            try:
                out = self._call(
                    pipe, adapter, plan, image, prompt, svd, chunk, len(videos), len(seeds),
                    progress, cancel,
                )  # fmt: skip
            except Cancelled:
                raise
            except Exception as exc:
                if not self._is_oom(exc):
                    raise GenerationFailed(
                        f"{info.family.value} generation failed: {_first_line(exc)}"
                    ) from exc
            if out is None:  # out of memory; the failed call's tensors are released by now
                self._free_cuda_memory()
                if batch > 1:
                    batch = math.ceil(batch / 2)
                    log.warning("out of memory: retrying with %d variation(s) per call", batch)
                    continue
                if self._device == "cuda" and not self._offloaded:
                    log.warning("out of memory with one variation: turning on CPU offload")
                    pipe.enable_model_cpu_offload()
                    self._offloaded = True
                    continue
                raise GenerationFailed("out of GPU memory even with one variation at a time")
            videos.extend((video, len(chunk)) for video in out)
        return videos

    def _retry_in_float32(
        self,
        pipe: Any,
        adapter: FamilyAdapter,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        seeds: list[int],
        videos: list[tuple[VideoArray, int]],
        faults: dict[int, str],
        cancel: CancelToken,
    ) -> tuple[list[tuple[VideoArray, int]], dict[int, str], set[int]]:
        """Make the failed takes again once with the VAE in float32; what still fails stays failed."""
        failed = sorted(faults)
        for k in failed:
            log.warning("variation %d (seed %d) failed: %s", k + 1, seeds[k], faults[k])
        with vae_in_float32(pipe) as upcast:
            if not upcast:  # already float32: the same seed would decode the same way again
                return (
                    videos,
                    {k: f"{r} (the VAE already runs in float32)" for k, r in faults.items()},
                    set(),
                )
            log.warning("retrying %d take(s) with the VAE in float32", len(failed))
            again = self._generate(
                pipe, adapter, plan, image, prompt, svd, [seeds[k] for k in failed],
                no_progress, cancel,
            )  # fmt: skip
        videos = list(videos)
        still: dict[int, str] = {}
        for k, (video, size) in zip(failed, again, strict=True):
            videos[k] = (video, size)
            fault = clip_fault(video)
            if fault is not None:
                still[k] = f"{fault}, also with the VAE in float32"
                log.warning("variation %d (seed %d) dropped: %s", k + 1, seeds[k], still[k])
        return videos, still, set(failed)

    def _call(
        self,
        pipe: Any,
        adapter: FamilyAdapter,
        plan: GenPlan,
        image: Any,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        seeds: list[int],
        done: int,
        total: int,
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> list[VideoArray]:
        import torch

        size = len(seeds)

        def on_step(
            pipeline: Any, step: int, timestep: Any, kwargs: dict[str, Any]
        ) -> dict[str, Any]:
            cancel.check()
            steps = max(1, int(getattr(pipeline, "num_timesteps", plan.steps) or plan.steps))
            fraction = (done + size * min(1.0, (step + 1) / steps)) / total
            progress(0.95 * fraction, "denoising")
            return {}

        generator_device = "cpu" if self._offloaded or self._device == "cpu" else self._device
        generators = [
            torch.Generator(device=generator_device).manual_seed(s % 2**63) for s in seeds
        ]
        self.calls.append(size)
        if self._before_call is not None:
            self._before_call(size)
        started = time.perf_counter()
        with torch.inference_mode():
            videos = adapter.generate(pipe, plan, image, prompt, svd, generators, on_step)
        log.info(
            "%s: %d variation(s) of %d frames at %dx%d in %.2f s",
            adapter.family.value,
            size,
            plan.num_frames,
            plan.width,
            plan.height,
            time.perf_counter() - started,
        )
        if videos.shape[0] != size:
            raise GenerationFailed(f"the model returned {videos.shape[0]} clips for {size} seeds")
        return list(videos)

    @staticmethod
    def _is_oom(exc: BaseException) -> bool:
        import torch

        return isinstance(exc, torch.cuda.OutOfMemoryError)

    def _free_cuda_memory(self) -> None:
        import torch

        if self._device == "cuda":
            torch.cuda.empty_cache()

    def _set_tiling(self, pipe: Any, plan: GenPlan) -> None:
        vae = getattr(pipe, "vae", None)
        if vae is None or not hasattr(vae, "use_tiling"):
            return  # e.g. SVD's temporal decoder: it decodes in chunks instead
        if max(plan.width, plan.height) >= self.settings.vae_tiling_px:
            vae.enable_tiling()
        else:
            vae.disable_tiling()

    @staticmethod
    def _condition_image(request: RenderRequest, plan: GenPlan) -> Any:
        from PIL import Image

        photo: Any = np.ascontiguousarray(request.image, dtype=np.uint8)
        h, w = photo.shape[:2]
        if (w, h) != (plan.width, plan.height):
            shrink = w * h > plan.width * plan.height
            photo = cv2.resize(
                photo,
                (plan.width, plan.height),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
            )
        return Image.fromarray(photo)

    def _finish(
        self,
        video: VideoArray,
        seed: int,
        request: RenderRequest,
        plan: GenPlan,
        info: ModelInfo,
        prompt: PromptPair | None,
        svd: SvdConditioning | None,
        batch: int,
        failed: str | None,
        retried: bool,
    ) -> Take:
        frames = to_uint8(video)
        loop: dict[str, Any]
        if failed is not None:
            clip = frames[: plan.loop_frames]
            loop = {"method": "none (failed take)"}
        elif plan.native_loop:
            clip = frames[: plan.loop_frames]
            loop = {"method": "first+last frame conditioned on the photo"}
            seam = loop_seam(clip)
            if seam > NATIVE_SEAM_LIMIT:
                # The model did not close the loop (e.g. weak conditioning): repair it after all.
                repaired = repair_loop(clip)
                clip = repaired.frames
                loop = {
                    **repaired.to_json(),
                    "method": f"{loop['method']}, then {repaired.to_json()['method']}",
                }
        else:
            repaired = repair_loop(frames[: plan.loop_frames])
            clip = repaired.frames
            loop = repaired.to_json()
        clip = retime_loop(clip, request.frames)
        height, width = request.image.shape[:2]
        clip = _resize(clip, width, height)
        details: dict[str, Any] = {
            "backend": self.name,
            "model": self.model,
            "family": info.family.value,
            "pipeline": info.class_name,
            **plan.to_json(),
            "batch_size": batch,
            "loop": loop,
        }
        if retried:
            details["vae_float32_retry"] = True
        if failed is not None:
            details["failed"] = failed
        if prompt is not None:
            details.update(prompt.to_json())
            # Guidance-distilled models run without classifier-free guidance: no negative prompt.
            details["negative_prompt_used"] = plan.guidance_scale > 1.0
        if svd is not None:
            details["svd"] = svd.to_json()
        return Take(frames=np.ascontiguousarray(clip, dtype=np.uint8), seed=seed, info=details)


@contextmanager
def vae_in_float32(pipe: Any) -> Iterator[bool]:
    """Run ``pipe.vae`` in float32 inside the block (inputs cast on the way in); True if it was not.

    The pipeline hands the VAE latents in its own dtype, so each of the VAE's child modules
    (encoder, decoder, quant convs) gets a pre-hook that casts floating tensors to float32.
    """
    import torch

    vae = getattr(pipe, "vae", None)
    if vae is None or vae.dtype == torch.float32:
        yield False
        return

    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.float()
        return value

    def upcast(
        module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(cast(a) for a in args), {k: cast(v) for k, v in kwargs.items()}

    original = vae.dtype
    handles = [
        child.register_forward_pre_hook(upcast, with_kwargs=True) for child in vae.children()
    ]
    vae.to(torch.float32)
    try:
        yield True
    finally:
        for handle in handles:
            handle.remove()
        vae.to(original)
