"""Tiny LTX, Wan, SVD and LTX-2 renders through the diffusers backend: the GPU path's contract.

Each family's tiny random pipeline (``tests/tinymodels.py``) is saved, loaded back with
``from_pretrained(dir)`` (bf16 on CUDA, float32 on the CPU) and asked for 2 variations. Each take
must be uint8 RGB at the request's size and frame count, pass the frame check, and close its loop.
Then the float32 VAE retry is exercised for real: the tiny LTX VAE that decodes NaN below float32
(``PoisonedLtxVae``) must be cured by the retry. CUDA-only faults (dtype, device placement) show
up here in seconds, before the long benchmarks.

Usage::

    python benchmarks/gpu_tiny_renders.py                 # CUDA when available
    python benchmarks/gpu_tiny_renders.py --device cpu    # the same checks on the CPU

Prints one markdown table; exit 1 when any check failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import numpy as np
import torch
from tinymodels import (
    build_tiny_ltx,
    build_tiny_ltx2,
    build_tiny_svd,
    build_tiny_wan,
    poisoned_ltx,
)

from generation.backend import CancelToken, RenderRequest
from generation.backends.diffusers import DiffusersBackend
from generation.backends.diffusers_settings import DiffusersSettings
from generation.frame_check import clip_fault
from generation.motion import Motion, MotionSpec, Primitive
from generation.quality import loop_seam

SPEC = MotionSpec(text="subtle blink", motions=(Motion(Primitive.BLINK, 0.3),))


def request(frames: int) -> RenderRequest:
    image = np.random.default_rng(0).integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    return RenderRequest(image=image, spec=SPEC, variations=2, frames=frames, fps=24, seed=1)


def check(backend: DiffusersBackend, frames: int) -> str:
    """Render 2 variations and check the contract; returns a one-line summary."""
    takes = backend.render(request(frames), lambda f, s: None, CancelToken())
    assert len(takes) == 2, f"{len(takes)} takes"
    for take in takes:
        assert take.frames.dtype == np.uint8, take.frames.dtype
        assert take.frames.shape == (frames, 30, 40, 3), take.frames.shape
        fault = take.info.get("failed") or clip_fault(take.frames)
        assert fault is None, fault
        assert loop_seam(take.frames) < 2.0, f"loop seam {loop_seam(take.frames):.2f}"
    info = takes[0].info
    return (
        f"{info['family']}: {info['generated_frames']} frames at {info['generated_size']}, "
        f"loop {info['loop']['method']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    args = parser.parse_args(argv)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    settings = DiffusersSettings(device=device, steps=2, max_tokens=16, latent_budget=0)
    root = Path(tempfile.mkdtemp(prefix="tiny-renders-"))
    builders: list[tuple[str, Callable[[Path], Path], int]] = [
        ("ltx", lambda p: build_tiny_ltx(p / "ltx-distilled"), 9),
        ("wan", lambda p: build_tiny_wan(p / "wan"), 9),
        ("svd", lambda p: build_tiny_svd(p / "svd"), 12),
        ("ltx2", lambda p: build_tiny_ltx2(p / "LTX-2"), 9),
    ]
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"tiny renders on {name}, torch {torch.__version__}, dtype "
          f"{'bfloat16' if device == 'cuda' else 'float32'}")  # fmt: skip
    print("| check | seconds | result |")
    print("|---|---|---|")
    failures = 0
    folders: dict[str, Path] = {}

    def row(label: str, run: Callable[[], str]) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            result = run()
        except Exception as exc:  # a failed check is a row, not the end of the script
            failures += 1
            first = (str(exc).splitlines() or [""])[0][:160]
            result = f"FAILED: {type(exc).__name__}: {first}"
            traceback.print_exc(file=sys.stderr)
        print(f"| {label} | {time.perf_counter() - started:.2f} | {result} |", flush=True)

    for family, build, frames in builders:

        def run(build: Callable[[Path], Path] = build, frames: int = frames) -> str:
            folder = build(root)
            folders[folder.name] = folder
            backend = DiffusersBackend(model=str(folder), settings=settings)
            backend.setup()
            return f"{check(backend, frames)}, {backend._pipe.dtype}"

        row(f"{family} render", run)

    def nan_retry() -> str:
        pipe = poisoned_ltx(folders["ltx-distilled"], "half", dtype=torch.bfloat16)
        backend = DiffusersBackend.from_pipeline(pipe, "ltx-distilled", settings=settings)
        takes = backend.render(request(9), lambda f, s: None, CancelToken())
        assert all(t.info.get("vae_float32_retry") and "failed" not in t.info for t in takes)
        assert pipe.vae.dtype == torch.bfloat16
        return f"bf16 VAE decoded NaN; float32 retry cured both takes (calls {list(backend.calls)})"

    row("NaN VAE, float32 retry", nan_retry)
    if device == "cuda":
        print(f"peak VRAM {torch.cuda.max_memory_allocated() / 1024**3:.2f} GiB")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
