"""The diffusers backend on tiny random LTX, Wan and SVD pipelines, loaded from disk, offline, on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from tinymodels import build_tiny_ltx, build_tiny_svd, build_tiny_wan

from generation.backend import CancelToken, RenderRequest, Take
from generation.backends import make_backend
from generation.backends.diffusers import DEFAULT_MODEL, DiffusersBackend
from generation.backends.diffusers_families import Family, detect_family, frames_at_least
from generation.backends.diffusers_settings import DiffusersSettings
from generation.motion import Constraint, Motion, MotionSpec, Primitive
from livingphoto.errors import Cancelled, GenerationFailed, UsageError

FAST = DiffusersSettings(device="cpu", steps=2, max_tokens=16)
SPEC = MotionSpec(
    text="gentle breathing, slight head tilt left",
    motions=(
        Motion(Primitive.BREATHING, 0.3),
        Motion(Primitive.HEAD_TILT, 0.3, direction="left"),
    ),
    constraints=frozenset({Constraint.KEEP_IDENTITY}),
)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny pipelines built once per test session and saved with ``save_pretrained``."""
    root = tmp_path_factory.mktemp("tiny-models")
    return {
        # "distilled" in the name: guidance 1.0, no classifier-free guidance (like the default).
        "ltx": build_tiny_ltx(root / "ltx-distilled"),
        "wan": build_tiny_wan(root / "wan"),
        "wan21": build_tiny_wan(root / "wan21", first_last_frame=False),
        "svd": build_tiny_svd(root / "svd"),
    }


@pytest.fixture(scope="session")
def ltx_backend(tiny: dict[str, Path]) -> DiffusersBackend:
    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST)
    backend.setup()
    return backend


def photo(height: int = 30, width: int = 40) -> NDArray[np.uint8]:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    return np.ascontiguousarray(base)


def request(variations: int = 2, frames: int = 9, seed: int = 100, **kw: object) -> RenderRequest:
    fields: dict[str, object] = {
        "image": photo(),
        "spec": SPEC,
        "variations": variations,
        "frames": frames,
        "fps": 24,
        "seed": seed,
    }
    fields.update(kw)
    return RenderRequest(**fields)  # type: ignore[arg-type]


def no_progress(fraction: float, stage: str) -> None:
    pass


def assert_clip(take: Take, frames: int, height: int = 30, width: int = 40) -> None:
    assert take.frames.dtype == np.uint8
    assert take.frames.shape == (frames, height, width, 3)


def assert_repaired(loop: dict[str, object]) -> None:
    """The loop went through loop repair (random tiny models often loop already: "unchanged")."""
    assert loop["method"] in {"trim+crossfade", "unchanged"}
    assert {"window", "fade_frames", "loop_seam_before", "loop_seam_after"} <= set(loop)
    assert float(loop["loop_seam_after"]) <= float(loop["loop_seam_before"])  # type: ignore[arg-type]


def assert_distinct(takes: list[Take]) -> None:
    for i in range(len(takes)):
        for j in range(i + 1, len(takes)):
            diff = np.abs(takes[i].frames.astype(int) - takes[j].frames.astype(int)).mean()
            assert diff > 0.5, f"variations {i + 1} and {j + 1} are the same clip"


# ----------------------------------------------------------------------------- family detection
def test_family_comes_from_model_index(tiny: dict[str, Path]) -> None:
    assert detect_family(str(tiny["ltx"])).family is Family.LTX
    assert detect_family(str(tiny["wan"])).family is Family.WAN
    info = detect_family(str(tiny["svd"]))
    assert (info.family, info.class_name) == (Family.SVD, "StableVideoDiffusionPipeline")


def test_unsupported_pipeline_class_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(
        json.dumps({"_class_name": "StableDiffusionPipeline"})
    )
    with pytest.raises(UsageError, match="StableDiffusionPipeline"):
        detect_family(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"no model_index\.json"),
        ("{not json", "not valid JSON"),
        ("[1]", "not a JSON object"),
        ('{"x": 1}', "names no pipeline class"),
    ],
)
def test_bad_model_folders_are_usage_errors(
    tmp_path: Path, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / "model_index.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        detect_family(str(tmp_path))


def test_missing_folder_and_unknown_hub_id_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hub

    with pytest.raises(UsageError, match="does not exist"):
        detect_family(str(tmp_path / "nope"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UsageError, match=r"not in the local Hugging Face cache and HF_HUB_OFFLINE"):
        detect_family("nobody-here/no-such-video-model")


def test_single_file_checkpoints_are_read_as_ltx(tmp_path: Path) -> None:
    info = detect_family(DEFAULT_MODEL)  # the 2B distilled checkpoint: a .safetensors URL
    assert (info.family, info.single_file) == (Family.LTX, True)
    with pytest.raises(UsageError, match="does not exist"):
        detect_family(str(tmp_path / "missing.safetensors"))
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"this is not a checkpoint")
    backend = DiffusersBackend(model=str(broken), settings=FAST)
    with pytest.raises(GenerationFailed, match=r"^could not load model .*broken\.safetensors: "):
        backend.setup()


def test_make_backend_builds_the_diffusers_backend_with_the_default_model() -> None:
    backend = make_backend("diffusers")
    assert isinstance(backend, DiffusersBackend)
    assert backend.model == DEFAULT_MODEL
    assert backend.family == ""  # nothing loaded before setup()


def test_frame_counts_follow_the_vae_ratio() -> None:
    assert [frames_at_least(n, 8) for n in (1, 2, 9, 10, 73)] == [1, 9, 9, 17, 73]


# ----------------------------------------------------------------------------- LTX
def test_ltx_clips_have_requested_frames_size_and_native_loop(
    ltx_backend: DiffusersBackend,
) -> None:
    takes = ltx_backend.render(request(variations=2, frames=9), no_progress, CancelToken())
    assert [t.seed for t in takes] == [100, 101]
    for take in takes:
        assert_clip(take, 9)
        assert take.info["family"] == "ltx"
        assert take.info["loop"]["method"].startswith("first+last frame")
        assert take.info["generated_frames"] == 13  # 4k+1 frames past the loop for the tiny VAE
        assert take.info["generated_size"] == [32, 32]
        assert "gentle breathing" in take.info["prompt"]
        assert "same person, consistent face" in take.info["prompt"]
        assert "extra teeth" in take.info["negative_prompt"]
        assert take.info["negative_prompt_used"] is False  # guidance 1.0: "distilled" in the name
    assert_distinct(takes)
    json.dumps(takes[0].info)  # reportable as-is in --json output


def test_ltx_with_last_frame_off_repairs_the_loop(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=replace(FAST, last_frame="off"))
    takes = backend.render(request(variations=1, frames=9), no_progress, CancelToken())
    assert_repaired(takes[0].info["loop"])
    assert takes[0].info["generated_frames"] == 13
    assert_clip(takes[0], 9)


def test_all_variations_in_one_pipeline_call(ltx_backend: DiffusersBackend) -> None:
    ltx_backend.calls.clear()
    takes = ltx_backend.render(request(variations=3), no_progress, CancelToken())
    assert list(ltx_backend.calls) == [3]
    assert len(takes) == 3
    assert_distinct(takes)
    assert all(t.info["batch_size"] == 3 for t in takes)


def test_out_of_memory_halves_the_batch_and_keeps_seeds(tiny: dict[str, Path]) -> None:
    failures = [torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")]

    def oom_once(batch: int) -> None:
        if failures:
            raise failures.pop()

    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST, before_call=oom_once)
    takes = backend.render(request(variations=3), no_progress, CancelToken())
    assert list(backend.calls) == [3, 2, 1]
    assert [t.seed for t in takes] == [100, 101, 102]
    assert [t.info["batch_size"] for t in takes] == [2, 2, 1]
    assert_distinct(takes)
    # The same seeds in one batch give the same clips: batching does not change the result.
    reference = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST)
    again = reference.render(request(variations=3), no_progress, CancelToken())
    for a, b in zip(takes, again, strict=True):
        assert np.abs(a.frames.astype(int) - b.frames.astype(int)).max() <= 2


def test_out_of_memory_with_one_variation_on_cpu_fails_cleanly(tiny: dict[str, Path]) -> None:
    def always_oom(batch: int) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST, before_call=always_oom)
    with pytest.raises(GenerationFailed, match="out of GPU memory"):
        backend.render(request(variations=2), no_progress, CancelToken())
    assert list(backend.calls) == [2, 1]


def test_other_pipeline_errors_become_generation_failed(tiny: dict[str, Path]) -> None:
    def boom(batch: int) -> None:
        raise RuntimeError("kernel exploded\nsecond line")

    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST, before_call=boom)
    with pytest.raises(GenerationFailed, match=r"^ltx generation failed: kernel exploded$"):
        backend.render(request(variations=1), no_progress, CancelToken())


def test_step_callback_reports_progress(ltx_backend: DiffusersBackend) -> None:
    reports: list[tuple[float, str]] = []
    ltx_backend.render(request(variations=2), lambda f, s: reports.append((f, s)), CancelToken())
    fractions = [f for f, _ in reports]
    denoising = [f for f, s in reports if s == "denoising"]
    assert len(denoising) >= 1 + FAST.steps  # the start, then one report per step
    assert fractions == sorted(fractions)
    assert 0.0 < denoising[-1] < 1.0
    assert reports[-1] == (1.0, "done")


def test_cancel_stops_the_run_and_is_reraised(ltx_backend: DiffusersBackend) -> None:
    token = CancelToken()
    steps: list[float] = []

    def cancel_at_first_step(fraction: float, stage: str) -> None:
        steps.append(fraction)
        if fraction > 0.0:
            token.cancel()

    ltx_backend.calls.clear()
    with pytest.raises(Cancelled):
        ltx_backend.render(request(variations=2), cancel_at_first_step, token)
    assert list(ltx_backend.calls) == [2]
    assert len([f for f in steps if f > 0.0]) == 1  # stopped at the first step callback


def test_cancelled_before_start_makes_no_pipeline_call(ltx_backend: DiffusersBackend) -> None:
    token = CancelToken()
    token.cancel()
    ltx_backend.calls.clear()
    with pytest.raises(Cancelled):
        ltx_backend.render(request(), no_progress, token)
    assert list(ltx_backend.calls) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variations": 0}, "at least 1 variation"),
        ({"frames": 1}, "2 frames"),
        ({"image": np.zeros((30, 40), dtype=np.uint8)}, "RGB image"),
    ],
)
def test_bad_requests_are_usage_errors(
    ltx_backend: DiffusersBackend, change: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        ltx_backend.render(replace(request(), **change), no_progress, CancelToken())  # type: ignore[arg-type]


def test_vae_tiling_only_for_large_generations(tiny: dict[str, Path]) -> None:
    small = DiffusersBackend(model=str(tiny["ltx"]), settings=FAST)
    small.render(request(variations=1), no_progress, CancelToken())
    assert small._pipe.vae.use_tiling is False
    large = DiffusersBackend(model=str(tiny["ltx"]), settings=replace(FAST, vae_tiling_px=32))
    large.render(request(variations=1), no_progress, CancelToken())
    assert large._pipe.vae.use_tiling is True


class _Pipe:
    """Stands in for a loaded pipeline in the placement decision (weights: one 4 MB layer)."""

    def __init__(self) -> None:
        self.components = {"transformer": torch.nn.Linear(1000, 1000), "tokenizer": object()}
        self.placed: list[str] = []

    def to(self, device: str) -> None:
        self.placed.append(device)

    def enable_model_cpu_offload(self) -> None:
        self.placed.append("model offload")


class _Cuda:
    def __init__(self, free: int) -> None:
        self.free = free

    def mem_get_info(self) -> tuple[int, int]:
        return self.free, 80 * 1024**3


class _Torch:
    def __init__(self, free: int) -> None:
        self.cuda = _Cuda(free)


@pytest.mark.parametrize(("free", "placed"), [(1 << 30, "cuda"), (1 << 20, "model offload")])
def test_cpu_offload_only_when_vram_is_short(free: int, placed: str) -> None:
    backend = DiffusersBackend(model="x", settings=replace(FAST, vram_headroom_gb=0.0))
    backend._device = "cuda"
    pipe = _Pipe()
    backend._place(pipe, _Torch(free))
    assert pipe.placed == [placed]


# ----------------------------------------------------------------------------- Wan and SVD
def test_wan_closes_the_loop_with_last_image(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(model=str(tiny["wan"]), settings=FAST)
    takes = backend.render(request(variations=2, frames=9), no_progress, CancelToken())
    assert backend.family == "wan" and list(backend.calls) == [2]
    for take in takes:
        assert_clip(take, 9)
        assert take.info["loop"]["method"].startswith("first+last frame")
        assert take.info["generated_frames"] == 9  # 8 loop frames at 16 fps, +1 = the photo
        assert "consistent face" in take.info["prompt"]
        assert take.info["negative_prompt_used"] is True  # guidance 5.0
    assert_distinct(takes)


def test_wan_without_first_last_frame_support_repairs_the_loop(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(model=str(tiny["wan21"]), settings=FAST)
    takes = backend.render(request(variations=1, frames=9), no_progress, CancelToken())
    loop = takes[0].info["loop"]
    assert_repaired(loop)
    assert loop["loop_seam_after"] <= loop["loop_seam_before"]
    assert_clip(takes[0], 9)


def test_svd_maps_energy_and_repairs_the_loop(tiny: dict[str, Path]) -> None:
    backend = DiffusersBackend(model=str(tiny["svd"]), settings=FAST)
    takes = backend.render(request(variations=2, frames=12), no_progress, CancelToken())
    assert list(backend.calls) == [2]
    for take in takes:
        assert_clip(take, 12)
        assert "prompt" not in take.info  # image-only model: no text was sent
        assert take.info["svd"]["motion_bucket_id"] == 64  # energy 0.3
        assert_repaired(take.info["loop"])
        assert take.info["generated_frames"] == 8
    assert_distinct(takes)


# ----------------------------------------------------------------------------- settings
def test_settings_from_env() -> None:
    settings = DiffusersSettings.from_env(
        {
            "LIVINGPHOTO_DIFFUSERS_DEVICE": "cpu",
            "LIVINGPHOTO_DIFFUSERS_STEPS": "4",
            "LIVINGPHOTO_DIFFUSERS_GUIDANCE": "2.5",
            "LIVINGPHOTO_DIFFUSERS_COMPILE": "true",
            "LIVINGPHOTO_DIFFUSERS_OFFLOAD": "model",
            "LIVINGPHOTO_DIFFUSERS_MAX_BATCH": "2",
            "LIVINGPHOTO_DIFFUSERS_LAST_FRAME": "off",
        }
    )
    assert (settings.device, settings.steps, settings.guidance_scale) == ("cpu", 4, 2.5)
    assert (settings.compile, settings.offload, settings.max_batch) == (True, "model", 2)
    assert settings.last_frame == "off"
    assert DiffusersSettings.from_env({}) == DiffusersSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIVINGPHOTO_DIFFUSERS_DEVICE", "tpu"),
        ("LIVINGPHOTO_DIFFUSERS_STEPS", "-1"),
        ("LIVINGPHOTO_DIFFUSERS_GUIDANCE", "lots"),
        ("LIVINGPHOTO_DIFFUSERS_COMPILE", "maybe"),
        ("LIVINGPHOTO_DIFFUSERS_OFFLOAD", "disk"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name) as err:
        DiffusersSettings.from_env({name: value})
    assert "\n" not in str(err.value)


def test_cuda_device_without_cuda_is_a_usage_error(
    tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    backend = DiffusersBackend(model=str(tiny["ltx"]), settings=replace(FAST, device="cuda"))
    with pytest.raises(UsageError, match="no CUDA device"):
        backend.setup()


# ----------------------------------------------------------------------------- end to end (CLI)
REPO = Path(__file__).resolve().parent.parent


def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
        "LIVINGPHOTO_DIFFUSERS_DEVICE": "cpu",
        "LIVINGPHOTO_DIFFUSERS_STEPS": "2",
        "LIVINGPHOTO_DIFFUSERS_MAX_TOKENS": "16",
    }
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", "animate", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=240,
    )


def test_animate_cli_end_to_end_with_a_tiny_model(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run_cli(
        "examples/astronaut.jpg",
        "gentle breathing",
        "--backend", "diffusers",
        "--model", str(tiny["ltx"]),
        "--consent", "--json",
        "--out", str(out),
        "--size", "128", "--seconds", "1", "--fps", "8", "--variations", "2", "--seed", "5",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    variations = result["variations"]
    assert sorted(v["seed"] for v in variations) == [5, 6]
    for v in variations:
        assert Path(v["path"]).is_file() and Path(v["path"]).stat().st_size > 0
        info = v["info"]
        assert info["family"] == "ltx" and info["backend"] == "diffusers"
        assert info["prompt"].startswith("gentle breathing.")
        assert "same person, consistent face" in info["prompt"]
        assert "extra teeth" in info["negative_prompt"]
        assert set(v["scores"]) == {"identity", "loop_seam", "flicker", "motion"}


def test_animate_cli_with_a_missing_model_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    done = run_cli(
        "examples/astronaut.jpg",
        "gentle breathing",
        "--backend", "diffusers",
        "--model", str(tmp_path / "no-such-model"),
        "--consent",
        "--out", str(tmp_path / "out"),
        tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0]
