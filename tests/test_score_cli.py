"""``livingphoto score`` and ``animate --face``/``subject``: the CLI contracts (DESIGN.md §2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from likeness_ladder import blend_toward, portrait

from generation.export import export_clip
from generation.faces import FaceModel

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
CAT = ROOT / "examples" / "chelsea.jpg"
SMALL = ["--variations", "1", "--seconds", "1", "--fps", "8", "--size", "256"]


def livingphoto(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=180,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clip of the astronaut made by ``animate``, and one whose face turns into another."""
    out = tmp_path_factory.mktemp("clips")
    made = livingphoto(
        "animate",
        ASTRONAUT,
        "blink, slight head tilt",
        *SMALL,
        "--consent",
        "--json",
        "--out",
        out / "animate",
        "--seed",
        "4",
    )
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    model = FaceModel()
    source, other = portrait(model, size=256), portrait(model, "grace_hopper.jpg", size=256)
    frames = np.repeat(source.image[None], 12, axis=0)
    frames[4:9] = blend_toward(source, other, 1.0)
    swapped = export_clip(frames, out / "swapped.mp4", 8, "mp4")
    return {
        "animate": Path(report["variations"][0]["path"]),
        "swapped": swapped,
        "report": out / "animate" / "summary.json",
    }


def test_score_matches_the_contract_and_flags_a_swap(clips: dict[str, Path]) -> None:
    result = livingphoto("score", ASTRONAUT, clips["animate"], clips["swapped"], "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert [c["path"] for c in body["clips"]] == [str(clips["animate"]), str(clips["swapped"])]
    for clip in body["clips"]:
        assert set(clip) == {"path", "scores", "flagged"}
        assert set(clip["scores"]) == {"identity", "loop_seam", "flicker", "motion"}
    same, swapped = body["clips"]
    assert not same["flagged"] and same["scores"]["identity"] > 0.9
    assert swapped["flagged"] and swapped["scores"]["identity"] < 0.8
    text = livingphoto("score", ASTRONAUT, clips["swapped"])
    assert text.returncode == 0 and "face drifts" in text.stdout


def test_score_bad_inputs_exit_2_with_one_line(clips: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video at all\n")
    assert "no clip" in one_line_error(livingphoto("score", ASTRONAUT, tmp_path / "nope.mp4"))
    assert "not a video" in one_line_error(livingphoto("score", ASTRONAUT, CAT))
    assert "as a video" in one_line_error(livingphoto("score", ASTRONAUT, junk))
    assert "no human face" in one_line_error(livingphoto("score", CAT, clips["animate"]))
    one_line_error(livingphoto("score", tmp_path / "missing.jpg", clips["animate"]))
    one_line_error(livingphoto("score", junk, clips["animate"]))
    one_line_error(livingphoto("score", ASTRONAUT))  # no clip at all


def test_animate_reports_the_subject(clips: dict[str, Path]) -> None:
    report = json.loads(clips["report"].read_text())
    subject = report["subject"]
    assert subject["kind"] == "face" and subject["chosen"] == 0
    ((x, y, w, h),) = subject["faces"]
    assert 180 <= x + w / 2 <= 260 and 80 <= y + h / 2 <= 160  # source photo pixels


def test_animate_face_choice_and_animals(tmp_path: Path) -> None:
    bad = livingphoto(
        "animate", ASTRONAUT, "blink", *SMALL, "--consent", "--face", "1", "--out", tmp_path / "a"
    )
    assert "out of range" in one_line_error(bad)
    cat = livingphoto(
        "animate", CAT, "blink, gentle breathing", *SMALL, "--json", "--out", tmp_path / "cat"
    )
    assert cat.returncode == 0, cat.stderr  # no person: no consent needed
    report = json.loads(cat.stdout)
    assert report["subject"]["kind"] != "face"
    assert all("blink" not in v.get("info", {}).get("components", []) for v in report["variations"])
