"""The LTX-2 family of the diffusers backend, on tiny random LTX-2 folders laid out like the hub's.

The folders are built offline at test time (Gemma 3 text encoder of 2 layers with an offline
tokenizer, tiny video and audio VAEs, connectors, vocoder), saved with ``save_pretrained`` so that
``model_index.json`` names ``LTX2Pipeline`` as on the hub, and loaded back by the backend through
``from_pretrained(dir)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tinymodels import build_tiny_ltx2

from generation.backend import CancelToken, RenderRequest
from generation.backends.diffusers import DiffusersBackend
from generation.backends.diffusers_families import (
    Family,
    Ltx2Adapter,
    detect_family,
    fit_budget,
)
from generation.backends.diffusers_settings import DiffusersSettings
from generation.export import probe, read_frames
from generation.motion import Motion, MotionSpec, Primitive
from generation.quality import loop_seam
from livingphoto.errors import Cancelled, UsageError

FAST = DiffusersSettings(device="cpu", steps=2, max_tokens=16)
SPEC = MotionSpec(text="subtle blink", motions=(Motion(Primitive.BLINK, 0.3),))
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ltx2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx2(tmp_path_factory.mktemp("hub") / "LTX-2")


@pytest.fixture(scope="module")
def backend(ltx2: Path) -> DiffusersBackend:
    backend = DiffusersBackend(model=str(ltx2), settings=FAST)
    backend.setup()
    return backend


def request(variations: int = 2, frames: int = 9, seed: int = 7) -> RenderRequest:
    image = np.random.default_rng(3).integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    return RenderRequest(
        image=image, spec=SPEC, variations=variations, frames=frames, fps=24, seed=seed
    )


def quiet(fraction: float, stage: str) -> None:
    pass


def test_hub_folders_name_ltx2pipeline_and_load_as_the_condition_pipeline(
    ltx2: Path, backend: DiffusersBackend
) -> None:
    index = json.loads((ltx2 / "model_index.json").read_text())
    assert index["_class_name"] == "LTX2Pipeline"
    assert {"text_encoder", "connectors", "audio_vae", "vocoder"} <= set(index)
    info = detect_family(str(ltx2))
    assert (info.family, info.class_name) == (Family.LTX2, "LTX2Pipeline")
    assert backend.family == "ltx2"
    assert type(backend._pipe).__name__ == "LTX2ConditionPipeline"


def test_image_to_video_folders_are_ltx2_too(tmp_path: Path) -> None:
    folder = tmp_path / "i2v"
    folder.mkdir()
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": "LTX2ImageToVideoPipeline"})
    )
    assert detect_family(str(folder)).family is Family.LTX2


def test_takes_have_the_requested_size_frames_and_a_native_loop(backend: DiffusersBackend) -> None:
    takes = backend.render(request(variations=2, frames=9), quiet, CancelToken())
    assert [t.seed for t in takes] == [7, 8]
    for take in takes:
        assert take.frames.dtype == np.uint8 and take.frames.shape == (9, 30, 40, 3)
        assert take.info["family"] == "ltx2" and take.info["pipeline"] == "LTX2Pipeline"
        assert take.info["loop"]["method"].startswith("first+last frame")
        # 9 loop frames (2k+1 for the tiny VAE's temporal ratio 2), the photo 2 frames later.
        assert take.info["generated_frames"] == 11
        assert take.info["generated_size"] == [32, 32]
        assert take.info["batch_size"] == 2
        assert "subtle blink" in take.info["prompt"]
        assert loop_seam(take.frames) < 1.0
    diff = np.abs(takes[0].frames.astype(int) - takes[1].frames.astype(int)).mean()
    assert diff > 0.5, "the two variations are the same clip"
    json.dumps(takes[0].info)


def test_distilled_models_run_with_every_guidance_neutral(ltx2: Path) -> None:
    settings = replace(FAST, distilled="true", guidance_scale=4.0)
    backend = DiffusersBackend(model=str(ltx2), settings=settings)
    take = backend.render(request(variations=1), quiet, CancelToken())[0]
    assert take.info["guidance_scale"] == 1.0
    assert take.info["negative_prompt_used"] is False
    assert DiffusersSettings(distilled="auto").is_distilled("org/LTX-2-Distilled-Diffusers")
    assert not DiffusersSettings(distilled="false").is_distilled("org/LTX-2-Distilled")


def test_real_size_plan_keeps_the_ltx2_constraints() -> None:
    """A 512 px, 3 s, 24 fps request on the real LTX-2 geometry (32x spatial, 8x temporal)."""
    pipe = SimpleNamespace(
        vae_spatial_compression_ratio=32,
        vae_temporal_compression_ratio=8,
        transformer_spatial_patch_size=1,
        transformer_temporal_patch_size=1,
    )
    image = np.zeros((384, 512, 3), dtype=np.uint8)
    req = RenderRequest(image=image, spec=SPEC, variations=3, frames=72, fps=24, seed=1)
    distilled = Ltx2Adapter(settings=DiffusersSettings().for_device("cuda"), distilled=True)
    plan = distilled.plan(pipe, req)
    assert (plan.width % 32, plan.height % 32) == (0, 0)
    assert (plan.width, plan.height) == (512, 384)
    assert plan.num_frames % 8 == 1 and plan.loop_frames % 8 == 1
    assert plan.num_frames == plan.loop_frames + 8  # index -1 lands 8 frames before the end
    assert plan.loop_frames >= 72
    assert (plan.steps, plan.guidance_scale) == (8, 1.0)
    full = Ltx2Adapter(settings=DiffusersSettings(steps=1).for_device("cuda"), distilled=False)
    assert full.plan(pipe, req).steps == 2  # LTX-2 needs at least 2 steps
    assert full.plan(pipe, req).guidance_scale == 3.0


def test_the_cpu_budget_lowers_size_and_frame_rate_only() -> None:
    assert fit_budget(512, 384, 32, 32, 0) == (512, 384, 192)
    width, height, per_frame = fit_budget(512, 384, 32, 2, 2048)
    assert per_frame <= 256 and width % 32 == 0 and height % 32 == 0
    assert fit_budget(64, 64, 32, 32, 2048) == (64, 64, 4)


def test_out_of_memory_halves_the_batch(ltx2: Path) -> None:
    failures = [torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")]

    def oom_once(batch: int) -> None:
        if failures:
            raise failures.pop()

    backend = DiffusersBackend(model=str(ltx2), settings=FAST, before_call=oom_once)
    takes = backend.render(request(variations=2), quiet, CancelToken())
    assert list(backend.calls) == [2, 1, 1]
    assert [t.seed for t in takes] == [7, 8]
    assert [t.info["batch_size"] for t in takes] == [1, 1]


def test_progress_and_cancel(backend: DiffusersBackend) -> None:
    reports: list[tuple[float, str]] = []
    backend.render(request(variations=1), lambda f, s: reports.append((f, s)), CancelToken())
    denoising = [f for f, s in reports if s == "denoising"]
    assert len(denoising) >= 1 + FAST.steps and reports[-1] == (1.0, "done")
    token = CancelToken()

    def cancel_at_first_step(fraction: float, stage: str) -> None:
        if fraction > 0.0:
            token.cancel()

    with pytest.raises(Cancelled):
        backend.render(request(variations=2), cancel_at_first_step, token)


def test_animate_cli_two_clips_closed_loops_offline(ltx2: Path, tmp_path: Path) -> None:
    """What the acceptance check runs: defaults (3 s, 24 fps, 512 px), two variations."""
    out = tmp_path / "out"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    env.pop("LIVINGPHOTO_DIFFUSERS_STEPS", None)
    done = subprocess.run(
        [
            sys.executable, "-m", "livingphoto", "animate", "examples/astronaut.jpg",
            "subtle blink", "--backend", "diffusers", "--model", str(ltx2),
            "--variations", "2", "--consent", "--out", str(out), "--json",
        ],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=280,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    variations = json.loads(done.stdout)["variations"]
    assert len(variations) == 2
    for v in variations:
        path = Path(v["path"])
        clip = probe(path)
        assert (clip.video_codec, clip.pix_fmt, clip.has_audio) == ("h264", "yuv420p", False)
        assert max(clip.width, clip.height) == 512
        frames = read_frames(path)
        assert frames.shape[0] == 72  # 3 s at 24 fps
        assert v["info"]["family"] == "ltx2"
        assert v["info"]["loop"]["method"].startswith("first+last frame")
        assert v["scores"]["loop_seam"] < 1.0  # the jump at the loop point is a typical step


def test_fp8_weight_storage_halves_the_big_modules(ltx2: Path) -> None:
    backend = DiffusersBackend(model=str(ltx2), settings=replace(FAST, fp8_weights=True))
    takes = backend.render(request(variations=1), quiet, CancelToken())
    assert takes[0].frames.shape == (9, 30, 40, 3)
    for name in ("transformer", "text_encoder"):
        dtypes = {p.dtype for p in getattr(backend._pipe, name).parameters()}
        assert torch.float8_e4m3fn in dtypes, name
    assert {p.dtype for p in backend._pipe.vae.parameters()} == {torch.float32}


def test_new_settings_from_env() -> None:
    settings = DiffusersSettings.from_env(
        {
            "LIVINGPHOTO_DIFFUSERS_FP8_WEIGHTS": "true",
            "LIVINGPHOTO_DIFFUSERS_DISTILLED": "false",
            "LIVINGPHOTO_DIFFUSERS_LATENT_BUDGET": "0",
        }
    )
    assert (settings.fp8_weights, settings.distilled, settings.latent_budget) == (True, "false", 0)
    assert settings.for_device("cpu").latent_budget == 0  # explicit 0: no budget, even on CPU
    assert DiffusersSettings().for_device("cpu").latent_budget == 2048
    assert DiffusersSettings().for_device("cpu").steps == 4
    assert DiffusersSettings().for_device("cuda") == replace(DiffusersSettings(), latent_budget=0)
    with pytest.raises(UsageError, match="LIVINGPHOTO_DIFFUSERS_DISTILLED"):
        DiffusersSettings.from_env({"LIVINGPHOTO_DIFFUSERS_DISTILLED": "maybe"})
