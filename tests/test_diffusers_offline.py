"""Offline or unreachable hub: one line naming the cause and the fix, in seconds, never retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generation.backends.diffusers import DEFAULT_MODEL, DiffusersBackend
from generation.backends.diffusers_families import detect_family
from generation.backends.diffusers_hub import (
    HubAccess,
    download_command,
    not_cached_message,
    probe,
)
from generation.backends.diffusers_settings import DiffusersSettings
from livingphoto.errors import UsageError

REPO = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def animate(
    tmp_path: Path, *model: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "LIVINGPHOTO_", "TRANSFORMERS_", "DIFFUSERS_"))
    }
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "livingphoto", "animate", "examples/astronaut.jpg",
            "subtle blink", "--backend", "diffusers", *model, "--consent",
            "--out", str(tmp_path / "out"),
        ],
        capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**clean, "HF_HOME": str(tmp_path / "empty-hf-home"), **env},
    )  # fmt: skip
    return done, time.perf_counter() - started


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_offline_and_not_in_the_cache(tmp_path: Path) -> None:
    done, _ = animate(tmp_path, "--model", "nobody-here/no-such-video-model", HF_HUB_OFFLINE="1")
    assert done.returncode == 2
    line = one_line(done)
    assert "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in line
    assert "`hf download nobody-here/no-such-video-model`" in line
    assert "--model DIR" in line
    assert "does not appear to have a file named" not in line


def test_unreachable_hub_fails_fast(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    done, _ = animate(tmp_path, "--model", "nobody-here/no-such-video-model", HF_ENDPOINT=endpoint)
    assert done.returncode == 2
    line = one_line(done)
    assert f"cannot reach {endpoint} (connection refused)" in line
    assert "hf download nobody-here/no-such-video-model" in line and "HF_HUB_OFFLINE=1" in line


def test_unreachable_hub_with_the_default_model(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    done, _ = animate(tmp_path, HF_ENDPOINT=endpoint)
    assert done.returncode == 2
    line = one_line(done)
    assert "cannot reach" in line
    assert "`hf download Lightricks/LTX-Video ltxv-2b-0.9.8-distilled.safetensors`" in line


def test_local_folder_that_is_not_a_pipeline(tmp_path: Path) -> None:
    """(A missing folder: test_diffusers_backend's CLI test; both in-process there too.)"""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a pipeline")
    done, _ = animate(tmp_path, "--model", str(folder), HF_HUB_OFFLINE="1")
    assert done.returncode == 2
    assert "is not a diffusers pipeline folder (no model_index.json)" in one_line(done)


def test_probe_and_messages() -> None:
    port = closed_port()
    assert (
        probe(f"http://127.0.0.1:{port}")
        == f"cannot reach http://127.0.0.1:{port} (connection refused)"
    )
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert probe(f"http://127.0.0.1:{server.getsockname()[1]}") == ""
    assert download_command(DEFAULT_MODEL) == (
        "hf download Lightricks/LTX-Video ltxv-2b-0.9.8-distilled.safetensors"
    )
    assert download_command("Lightricks/LTX-2") == "hf download Lightricks/LTX-2"
    offline = not_cached_message("a/b", HubAccess(offline=True, reason="HF_HUB_OFFLINE is set"))
    assert "\n" not in offline and "(then set HF_HUB_OFFLINE=1)" not in offline


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The hub at a closed local port, network allowed (as on a machine whose network is down)."""
    import huggingface_hub.constants as hub

    endpoint = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setattr(hub, "ENDPOINT", endpoint)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "cache"))
    return endpoint


# huggingface_hub alone would retry 5 times, sleeping 1 + 2 + 4 + 8 + 8 s: these must end well before.
RETRY_SLEEPS_S = 23.0


def test_unreachable_hub_id_fails_in_seconds(unreachable_hub: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UsageError, match=f"cannot reach {unreachable_hub}"):
        detect_family("nobody-here/no-such-video-model")
    assert time.perf_counter() - started < RETRY_SLEEPS_S / 4


def test_unreachable_hub_default_model_fails_in_seconds(unreachable_hub: str) -> None:
    import diffusers

    assert diffusers.LTXConditionPipeline.from_single_file  # imports done before the clock starts
    backend = DiffusersBackend(settings=DiffusersSettings(device="cpu"))
    started = time.perf_counter()
    with pytest.raises(UsageError, match="not in the local Hugging Face cache and cannot reach"):
        backend.setup()
    assert time.perf_counter() - started < RETRY_SLEEPS_S / 2
