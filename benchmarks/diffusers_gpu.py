"""Speed of the diffusers backend with real-size LTX-Video 2B or LTX-2 distilled architectures.

Speed does not depend on the weights' values, so nothing is downloaded: the models are built with
random weights from the published configs, directly on the GPU in bf16, and the pipeline runs
through the real ``DiffusersBackend.render`` path (batching, loop conditioning, progress, the
frame check).

- ``--family ltx`` (default): LTX-Video 2B (0.9.5 architecture, the one the 2B 0.9.6-0.9.8
  distilled checkpoints use) with the T5-v1.1-XXL encoder; 8-step distilled timesteps.
- ``--family ltx2``: LTX-2 (19B audio-video transformer, 48 layers, the diffusers defaults of
  ``LTX2VideoTransformer3DModel``), its video VAE (32x spatial, 8x temporal), audio VAE, vocoder,
  text connectors and a Gemma 3 12B text encoder; 8-step distilled sigmas, guidance 1.0, no STG.

Reported for one request of N variations (default: 3 variations of a 3 s, 24 fps loop at 512 px):
seconds per request (median of --runs after a warm-up), seconds per variation, peak VRAM, and
the speed-up of one batched call over N sequential calls and of ``torch.compile`` (regional, the
transformer's repeated blocks) over eager.

Usage::

    python benchmarks/diffusers_gpu.py                 # one CUDA GPU, real-size 2B configs
    python benchmarks/diffusers_gpu.py --no-compile    # skip the compile comparison
    python benchmarks/diffusers_gpu.py --tiny          # CPU check with tiny configs
    python benchmarks/diffusers_gpu.py --family ltx2   # LTX-2 distilled, real size (~70 GB VRAM)
    python benchmarks/diffusers_gpu.py --family ltx2 --tiny
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch

from generation.backend import CancelToken, RenderRequest
from generation.backends.diffusers import DiffusersBackend
from generation.backends.diffusers_settings import DiffusersSettings
from generation.motion import Motion, MotionSpec, Primitive

# diffusers' LTXVideoTransformer3DModel config of Lightricks/LTX-Video-0.9.5 (2B; same for the
# 2B 0.9.6/0.9.7/0.9.8 distilled checkpoints).
LTX_2B_TRANSFORMER: dict[str, Any] = {
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 64,
    "attention_out_bias": True,
    "caption_channels": 4096,
    "cross_attention_dim": 2048,
    "in_channels": 128,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "num_attention_heads": 32,
    "num_layers": 28,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "qk_norm": "rms_norm_across_heads",
}
# AutoencoderKLLTXVideo config of the 0.9.5+ VAE (32x spatial, 8x temporal, timestep-aware).
LTX_2B_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "block_out_channels": (128, 256, 512, 1024, 2048),
    "down_block_types": ("LTXVideo095DownBlock3D",) * 4,
    "decoder_block_out_channels": (256, 512, 1024),
    "layers_per_block": (4, 6, 6, 2, 2),
    "decoder_layers_per_block": (5, 5, 5, 5),
    "spatio_temporal_scaling": (True, True, True, True),
    "decoder_spatio_temporal_scaling": (True, True, True),
    "decoder_inject_noise": (False, False, False, False),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "upsample_residual": (True, True, True),
    "upsample_factor": (2, 2, 2),
    "timestep_conditioning": True,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-06,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}
# google/t5-v1_1-xxl encoder (what LTX-Video ships as its text encoder).
T5_XXL: dict[str, Any] = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
# Tiny configs (after diffusers' own fast tests) for --tiny.
TINY_TRANSFORMER: dict[str, Any] = {
    "in_channels": 8,
    "out_channels": 8,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "cross_attention_dim": 32,
    "num_layers": 1,
    "caption_channels": 32,
}
TINY_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 8,
    "block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1, 1),
    "spatio_temporal_scaling": (True, True, False, False),
    "decoder_spatio_temporal_scaling": (True, True, False, False),
    "decoder_inject_noise": (False, False, False, False, False),
    "upsample_residual": (False, False, False, False),
    "upsample_factor": (1, 1, 1, 1),
    "timestep_conditioning": True,
    "patch_size": 1,
    "patch_size_t": 1,
    "encoder_causal": True,
    "decoder_causal": False,
}
TINY_T5: dict[str, Any] = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
# LTX-2 (Lightricks/LTX-2): the video VAE's published config differs from the class defaults in
# its causal decoder flag and the explicit compression ratios. Transformer, audio VAE, vocoder
# and connectors are the class defaults (LTX-2.0's).
LTX2_VAE: dict[str, Any] = {
    "decoder_causal": False,
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}
# google/gemma-3-12b (LTX-2's text encoder): text and SigLIP vision towers.
GEMMA3_12B_TEXT: dict[str, Any] = {
    "vocab_size": 262208,
    "hidden_size": 3840,
    "intermediate_size": 15360,
    "num_hidden_layers": 48,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
    "sliding_window": 1024,
    "query_pre_attn_scalar": 256,
}
SIGLIP_SO400M: dict[str, Any] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 896,
    "patch_size": 14,
}
_PROMPTS = [
    "gentle breathing, subtle blink, slight head tilt to the left",
    "same person, consistent face, natural subtle motion, static camera, seamless loop",
    "warping, distorted face, melting face, morphing face, extra teeth, flicker, jitter",
]


def offline_tokenizer(vocab_size: int) -> Any:
    """A small Unigram tokenizer trained on a few prompts (no download)."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tf: Any = transformers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<unk>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(_PROMPTS * 8, trainer=trainer)
    return tf.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_pipeline(tiny: bool, device: str, dtype: torch.dtype) -> Any:
    """An ``LTXConditionPipeline`` with random weights, built directly on ``device``."""
    import diffusers
    import transformers

    d: Any = diffusers  # untyped third-party constructors
    tf: Any = transformers

    tokenizer = offline_tokenizer(120)
    t5 = dict(TINY_T5 if tiny else T5_XXL)
    t5["vocab_size"] = max(len(tokenizer), int(t5.get("vocab_size", 0)))
    torch.manual_seed(0)
    with torch.device(device):
        transformer = d.LTXVideoTransformer3DModel(
            **(TINY_TRANSFORMER if tiny else LTX_2B_TRANSFORMER)
        )
        vae = d.AutoencoderKLLTXVideo(**(TINY_VAE if tiny else LTX_2B_VAE))
        text_encoder = tf.T5EncoderModel(tf.T5Config(**t5)).eval()
    return d.LTXConditionPipeline(
        transformer=transformer.to(dtype),
        vae=vae.to(dtype),
        scheduler=d.FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder.to(dtype),
        tokenizer=tokenizer,
    )


def build_ltx2_pipeline(tiny: bool, device: str, dtype: torch.dtype) -> Any:
    """An ``LTX2ConditionPipeline`` with random weights (``tiny``: the test suite's tiny one)."""
    import diffusers
    import transformers

    d: Any = diffusers
    tf: Any = transformers
    if tiny:
        import tempfile

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from tinymodels import build_tiny_ltx2

        folder = build_tiny_ltx2(Path(tempfile.mkdtemp(prefix="ltx2-tiny-")) / "LTX-2")
        return d.LTX2ConditionPipeline.from_pretrained(str(folder), dtype=dtype).to(device)
    from diffusers.pipelines.ltx2 import LTX2TextConnectors, LTX2Vocoder

    tokenizer = offline_tokenizer(120)
    gemma = tf.Gemma3Config(
        text_config=GEMMA3_12B_TEXT, vision_config=SIGLIP_SO400M, mm_tokens_per_image=256
    )
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in bf16 directly: 19B + 12B parameters
    try:
        with torch.device(device):
            transformer = d.LTX2VideoTransformer3DModel()
            vae = d.AutoencoderKLLTX2Video(**LTX2_VAE)
            audio_vae = d.AutoencoderKLLTX2Audio()
            vocoder = LTX2Vocoder()
            connectors = LTX2TextConnectors()
            text_encoder = tf.Gemma3ForConditionalGeneration(gemma).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    return d.LTX2ConditionPipeline(
        transformer=transformer.to(dtype),
        vae=vae.to(dtype),
        audio_vae=audio_vae.to(dtype),
        vocoder=vocoder.to(dtype),
        connectors=connectors.to(dtype),
        text_encoder=text_encoder.to(dtype),
        tokenizer=tokenizer,
        scheduler=d.FlowMatchEulerDiscreteScheduler(
            use_dynamic_shifting=True,
            base_shift=0.95,
            max_shift=2.05,
            base_image_seq_len=1024,
            max_image_seq_len=4096,
            shift_terminal=0.1,
            time_shift_type="exponential",
        ),
    )


@dataclass(frozen=True)
class Row:
    mode: str
    seconds: list[float]
    variations: int
    peak_gib: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure(
    backend: DiffusersBackend, request: RenderRequest, runs: int, warmup: int, cuda: bool
) -> tuple[list[float], float | None]:
    def once() -> None:
        backend.render(request, lambda f, s: None, CancelToken())
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        once()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 1024**3 if cuda else None
    return times, peak


def make_request(size: int, seconds: float, fps: int, variations: int) -> RenderRequest:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    spec = MotionSpec(
        text="subtle blink, gentle breathing",
        motions=(Motion(Primitive.BLINK, 0.3), Motion(Primitive.BREATHING, 0.3)),
    )
    return RenderRequest(
        image=image,
        spec=spec,
        variations=variations,
        frames=max(2, round(seconds * fps)),
        fps=fps,
        seed=1234,
    )


def print_table(rows: list[Row], title: str) -> None:
    print(title)
    print(
        f"| mode | s/request (median of {len(rows[0].seconds)}) | s/variation | peak VRAM | speed-up |"
    )
    print("|---|---|---|---|---|")
    base = {r.mode: r.median for r in rows}
    for row in rows:
        speedup = ""
        if row.mode == "batched, eager" and "sequential, eager" in base:
            speedup = f"{base['sequential, eager'] / row.median:.2f}x vs sequential"
        if row.mode == "batched, compiled" and "batched, eager" in base:
            speedup = f"{base['batched, eager'] / row.median:.2f}x vs eager"
        peak = f"{row.peak_gib:.1f} GiB" if row.peak_gib is not None else "n/a (CPU)"
        print(
            f"| {row.mode} | {row.median:.3f} | {row.median / row.variations:.3f} | {peak} | {speedup} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("ltx", "ltx2"), default="ltx")
    parser.add_argument("--tiny", action="store_true", help="tiny configs (correctness)")
    parser.add_argument(
        "--device", choices=("auto", "cuda", "cpu"), default="auto", help="--tiny only"
    )
    parser.add_argument("--variations", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=None, help="default 3 (tiny: 1)")
    parser.add_argument("--fps", type=int, default=None, help="default 24 (tiny: 8)")
    parser.add_argument("--size", type=int, default=None, help="default 512 (tiny: 64)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="0: the distilled 8-step schedule")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    args = parser.parse_args(argv)

    wanted = "cpu" if args.tiny and args.device == "auto" else args.device
    cuda = torch.cuda.is_available() and wanted in ("auto", "cuda")
    if wanted == "cuda" and not cuda:
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if not args.tiny and not cuda:
        print("error: the real-size benchmark needs a CUDA GPU; use --tiny on CPU", file=sys.stderr)
        return 2
    seconds = args.seconds if args.seconds is not None else (1.0 if args.tiny else 3.0)
    fps = args.fps if args.fps is not None else (8 if args.tiny else 24)
    size = args.size if args.size is not None else (64 if args.tiny else 512)
    steps = args.steps or (2 if args.tiny else 0)
    device: Literal["cuda", "cpu"] = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32

    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # keep the table readable
    started = time.perf_counter()
    if args.family == "ltx2":
        pipe = build_ltx2_pipeline(args.tiny, device, dtype)
        name = "ltx-2-distilled (random weights)" if not args.tiny else "ltx-2-tiny-distilled"
    else:
        pipe = build_pipeline(args.tiny, device, dtype)
        name = "ltx-2b-distilled (random weights)" if not args.tiny else "ltx-tiny-distilled"
    pipe.set_progress_bar_config(disable=True)
    built_s = time.perf_counter() - started
    settings = DiffusersSettings(
        device=device, steps=steps, offload="none", max_tokens=128, latent_budget=0
    )
    request = make_request(size, seconds, fps, args.variations)

    rows: list[Row] = []
    plan: dict[str, Any] = {}

    def run(mode: str, backend: DiffusersBackend, warmup: int) -> None:
        backend.setup()
        times, peak = measure(backend, request, args.runs, warmup, cuda)
        rows.append(Row(mode, times, args.variations, peak))
        # As it comes, so a run stopped at a time limit still leaves its figures.
        peak_text = f"{peak:.1f} GiB" if peak is not None else "n/a"
        print(
            f"measured: {mode}: {statistics.median(times):.3f} s/request, peak {peak_text}",
            flush=True,
        )
        if not plan:
            take = backend.render(replace(request, variations=1), lambda f, s: None, CancelToken())
            plan.update(take[0].info)

    def make(chosen: DiffusersSettings) -> DiffusersBackend:
        return DiffusersBackend.from_pipeline(pipe, name, settings=chosen)

    run("batched, eager", make(settings), args.warmup)
    run("sequential, eager", make(replace(settings, max_batch=1)), args.warmup)
    if not args.no_compile:
        # Compilation happens during the first calls: warm up twice before timing.
        run("batched, compiled", make(replace(settings, compile=True)), max(2, args.warmup))

    device_name = torch.cuda.get_device_name() if cuda else "CPU"
    print(
        f"{name} on {device_name}, torch {torch.__version__}; built in {built_s:.1f} s; "
        f"{args.variations} variations x {request.frames} frames ({seconds:g} s at {fps} fps), "
        f"{size} px; generated {plan.get('generated_frames')} frames at "
        f"{plan.get('generated_size')}, {plan.get('steps')} steps, guidance {plan.get('guidance_scale')}"
    )
    print_table(rows, "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
