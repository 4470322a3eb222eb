"""Black or NaN frames from a generator are failed takes: retried with the VAE in float32, then
dropped with a warning; a job whose every take failed fails with the reason (exit 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tinymodels import build_tiny_ltx, build_tiny_ltx_nan_decoder, poisoned_ltx

from generation.animator import AnimateOptions, Animator
from generation.backend import CancelToken, RenderRequest, Take
from generation.backends.diffusers import DiffusersBackend
from generation.backends.diffusers_settings import DiffusersSettings
from generation.frame_check import clip_fault, screen_takes
from generation.motion import Motion, MotionSpec, Primitive
from livingphoto.errors import GenerationFailed

FAST = DiffusersSettings(device="cpu", steps=2, max_tokens=16)
SPEC = MotionSpec(text="subtle blink", motions=(Motion(Primitive.BLINK, 0.3),))
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def ltx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_ltx(tmp_path_factory.mktemp("frame-check") / "ltx-distilled")


def request(variations: int = 2) -> RenderRequest:
    image = np.random.default_rng(5).integers(0, 255, size=(30, 40, 3), dtype=np.uint8)
    return RenderRequest(image=image, spec=SPEC, variations=variations, frames=9, fps=24, seed=3)


def quiet(fraction: float, stage: str) -> None:
    pass


def noise_clip(frames: int = 6) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 255, size=(frames, 16, 16, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- the check itself
def test_nan_and_inf_are_faults_in_float_frames() -> None:
    clip = noise_clip().astype(np.float32) / 255.0
    assert clip_fault(clip) is None
    clip[2, 3, 4, 0] = np.nan
    assert clip_fault(clip) == "NaN or inf in 1 of 6 decoded frames"
    clip[4, 0, 0, 1] = np.inf
    assert clip_fault(clip) == "NaN or inf in 2 of 6 decoded frames"


@pytest.mark.parametrize(
    ("value", "colour"), [(0, "black"), (255, "white"), (128, "one flat colour")]
)
def test_flat_clips_are_faults(value: int, colour: str) -> None:
    flat = np.full((8, 16, 16, 3), value, dtype=np.uint8)
    assert clip_fault(flat) == f"8 of 8 frames are {colour}"
    some = noise_clip(8)
    some[:2] = 0  # a quarter of the frames black
    assert clip_fault(some) == "2 of 8 frames are black"
    one = noise_clip(8)
    one[0] = 0
    assert clip_fault(one) is None  # one black frame in eight is not yet a failed take


def test_a_still_but_detailed_clip_is_not_a_fault() -> None:
    still = np.repeat(noise_clip(1), 10, axis=0)
    assert clip_fault(still) is None


def test_bad_shapes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        clip_fault(np.zeros((4, 8, 8), dtype=np.uint8))


def test_screen_takes_drops_failed_takes_with_a_warning() -> None:
    good = Take(frames=noise_clip(), seed=1)
    black = Take(frames=np.zeros((6, 16, 16, 3), dtype=np.uint8), seed=2)
    marked = Take(frames=noise_clip(), seed=3, info={"failed": "NaN or inf in 6 of 6 frames"})
    warnings: list[str] = []
    kept = screen_takes([good, black, marked], warnings)
    assert kept == [good]
    assert warnings == [
        "variation 2 (seed 2) was dropped: 6 of 6 frames are black",
        "variation 3 (seed 3) was dropped: NaN or inf in 6 of 6 frames",
    ]
    with pytest.raises(GenerationFailed, match=r"^every take failed \(6 of 6 frames are black\)"):
        screen_takes([black], [])


# ----------------------------------------------------------------------------- the backend
def test_half_precision_nan_is_cured_by_the_float32_retry(ltx: Path) -> None:
    pipe = poisoned_ltx(ltx, "half", dtype=torch.bfloat16)
    backend = DiffusersBackend.from_pipeline(pipe, "ltx-distilled", settings=FAST)
    takes = backend.render(request(variations=2), quiet, CancelToken())
    assert list(backend.calls) == [2, 2]  # the batch, then both takes again in float32
    for take in takes:
        assert take.info.get("vae_float32_retry") is True
        assert "failed" not in take.info
        assert clip_fault(take.frames) is None
    assert pipe.vae.dtype == torch.bfloat16  # the VAE is put back as it was


def test_a_take_that_fails_again_is_marked_failed(ltx: Path) -> None:
    pipe = poisoned_ltx(ltx, "nan", dtype=torch.bfloat16)
    backend = DiffusersBackend.from_pipeline(pipe, "ltx-distilled", settings=FAST)
    takes = backend.render(request(variations=1), quiet, CancelToken())
    assert takes[0].info["failed"].endswith("also with the VAE in float32")
    assert takes[0].info["failed"].startswith("NaN or inf in")


def test_float32_vae_is_not_retried_in_vain(ltx: Path) -> None:
    pipe = poisoned_ltx(ltx, "zeros")
    backend = DiffusersBackend.from_pipeline(pipe, "ltx-distilled", settings=FAST)
    takes = backend.render(request(variations=1), quiet, CancelToken())
    assert list(backend.calls) == [1]
    assert "already runs in float32" in takes[0].info["failed"]


@pytest.fixture(scope="module")
def animator_for() -> object:
    def make(pipe: object) -> Animator:
        backend = DiffusersBackend.from_pipeline(pipe, "ltx-distilled", settings=FAST)
        return Animator(backend)

    return make


def test_one_failed_take_is_dropped_and_the_rest_delivered(
    ltx: Path, animator_for: object, tmp_path: Path
) -> None:
    animator = animator_for(poisoned_ltx(ltx, "first"))  # type: ignore[operator]
    photo = (REPO / "examples" / "astronaut.jpg").read_bytes()
    options = AnimateOptions(variations=2, seconds=1.0, fps=8, size=128, seed=11)
    result = animator.animate(photo, "subtle blink", options, tmp_path)
    assert [v.seed for v in result.variations] == [12]
    assert any(
        w.startswith("variation 1 (seed 11) was dropped: NaN or inf") for w in result.warnings
    )
    assert sorted(p.name for p in tmp_path.glob("variation-*")) == ["variation-1.mp4"]


def test_black_takes_are_never_delivered(ltx: Path, animator_for: object, tmp_path: Path) -> None:
    animator = animator_for(poisoned_ltx(ltx, "zeros"))  # type: ignore[operator]
    photo = (REPO / "examples" / "astronaut.jpg").read_bytes()
    options = AnimateOptions(variations=2, seconds=1.0, fps=8, size=128, seed=11)
    with pytest.raises(GenerationFailed, match="every take failed"):
        animator.animate(photo, "subtle blink", options, tmp_path)
    assert list(tmp_path.glob("variation-*")) == []


def test_cli_exits_4_with_one_line_when_every_take_is_nan(tmp_path: Path) -> None:
    model = build_tiny_ltx_nan_decoder(tmp_path / "ltx-nan-distilled")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [
            sys.executable, "-m", "livingphoto", "animate", "examples/astronaut.jpg",
            "subtle blink", "--backend", "diffusers", "--model", str(model), "--consent",
            "--variations", "2", "--seconds", "1", "--fps", "8", "--size", "128",
            "--out", str(tmp_path / "out"),
        ],
        capture_output=True, text=True, cwd=REPO, env={**env, "LIVINGPHOTO_DIFFUSERS_STEPS": "2"},
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "every take failed (NaN or inf in" in last
    assert not list((tmp_path / "out").glob("variation-*"))
