"""The real ``livingphoto animate`` command in a subprocess: bad input, odd input, a full run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import images
import numpy as np
import pytest
from numpy.typing import NDArray

from generation.export import SYNTHETIC_STATEMENT, probe, read_frames
from livingphoto.cli import main

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
SMALL = ["--variations", "1", "--seconds", "1", "--fps", "8", "--size", "128"]


def animate(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", "animate", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


def run_all(cases: dict[str, list[str | Path]]) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run several ``livingphoto animate`` commands concurrently (each is mostly start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(animate, *args) for name, args in cases.items()}
        return {name: future.result() for name, future in futures.items()}


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    expected: dict[str, str] = {
        "zero-bytes": "empty",
        "text-renamed-jpg": "not an image",
        "truncated-jpeg": "truncated",
        "decompression-bomb-png": "too many pixels",
        "one-by-one": "too small",
        "strip-30000x200": "too elongated",
        "bmp": "BMP",
    }
    cases: dict[str, list[str | Path]] = {}
    for name, data in images.bad_images().items():
        photo = tmp_path / f"{name}.jpg"
        photo.write_bytes(data)
        cases[name] = [photo, "subtle blink", "--consent", "--out", tmp_path / "out"]
    cases["missing"] = [tmp_path / "nope.jpg", "blink"]
    cases["directory"] = [tmp_path, "blink"]
    expected |= {"missing": "no such file", "directory": "directory"}
    arguments: dict[str, tuple[list[str], str]] = {
        "empty-prompt": (["", "--consent"], "empty"),
        "long-prompt": (["x" * 5000, "--consent"], "too long"),
        "variations-0": (["blink", "--variations", "0"], "--variations"),
        "variations-99": (["blink", "--variations", "99"], "--variations"),
    }
    for name, (args, words) in arguments.items():
        cases[name] = [ASTRONAUT, *args, "--out", tmp_path / "out"]
        expected[name] = words
    results = run_all(cases)
    for name, result in results.items():
        line = assert_one_line_error(result)
        assert expected[name] in line, (name, line)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--seconds", "7"], "--seconds"),
        (["--seconds", "abc"], "--seconds"),
        (["--fps", "5"], "--fps"),
        (["--size", "64"], "--size"),
        (["--size", "2000"], "--size"),
        (["--backend", "magic"], "--backend"),
        (["--crop", "tight"], "--crop"),
        (["--format", "avi"], "--format"),
    ],
)
def test_out_of_range_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    # The same parser in-process (the subprocess path is covered above).
    with pytest.raises(SystemExit) as caught:
        main(["animate", str(ASTRONAUT), "blink", *args, "--out", str(tmp_path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_person_without_consent_exits_3(tmp_path: Path) -> None:
    line = assert_one_line_error(animate(ASTRONAUT, "blink", *SMALL, "--out", tmp_path), code=3)
    assert "--consent" in line and "permission" in line
    assert not list(tmp_path.iterdir())


def test_odd_but_valid_photos_succeed(tmp_path: Path) -> None:
    cases: dict[str, list[str | Path]] = {}
    for name, data in images.odd_images().items():
        photo = tmp_path / f"photo-{name}"
        photo.write_bytes(data)
        cases[name] = [photo, "gentle breathing", *SMALL, "--json", "--out", tmp_path / name]
    for name, result in run_all(cases).items():
        assert result.returncode == 0, (name, result.stderr)
        report = json.loads(result.stdout)
        clip = Path(report["variations"][0]["path"])
        info = probe(clip)
        assert info.video_codec == "h264" and not info.has_audio, name
        if name == "animated-gif":
            assert any("first frame" in w for w in report["warnings"])
    gps_out = tmp_path / "exif-orientation-gps-jpeg"
    info = probe(gps_out / "variation-1.mp4")
    assert (info.width, info.height) == (96, 128)  # EXIF rotation applied: portrait
    for produced in gps_out.iterdir():
        data = produced.read_bytes()
        # No EXIF block at all (the GPS tags live in it), and not the camera's name either.
        # (Not b"GPS" alone: three bytes turn up by chance in compressed data now and then.)
        assert b"LeakyCam" not in data and b"Exif\x00\x00" not in data, produced.name
    assert not any("gps" in k or "location" in k for k in info.metadata)


def eye_change(frames: NDArray[np.uint8], peak: int, eye: tuple[float, float], half: int) -> float:
    x, y = int(eye[0]), int(eye[1])
    crop = frames[:, y - half // 2 : y + half // 2 + 1, x - half : x + half + 1]
    grey = np.stack([cv2.cvtColor(np.ascontiguousarray(c), cv2.COLOR_RGB2GRAY) for c in crop])
    return float(np.abs(grey[peak].astype(np.int16) - grey[0].astype(np.int16)).mean())


def test_full_size_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = animate(
        ASTRONAUT,
        "subtle blink, slight head tilt, gentle breathing",
        "--consent",
        "--json",
        "--seed",
        "7",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress bar
    report: dict[str, Any] = json.loads(result.stdout)
    assert set(report) >= {"variations", "motion", "warnings"}
    assert [m["primitive"] for m in report["motion"]["motions"]] == [
        "blink",
        "head_tilt",
        "breathing",
    ]
    assert sorted(v["rank"] for v in report["variations"]) == [1, 2, 3]
    assert (out / "contact-sheet.png").is_file()
    assert json.loads((out / "summary.json").read_text()) == report
    from generation.faces import FaceModel

    model = FaceModel()
    subject = report["subject"]
    assert subject["kind"] == "face" and subject["chosen"] == 0 and len(subject["faces"]) == 1
    for variation in report["variations"]:
        assert set(variation["scores"]) == {"identity", "loop_seam", "flicker", "motion"}
        assert variation["scores"]["motion"] > 0.05
        assert variation["scores"]["identity"] > 0.8
        clip = Path(variation["path"])
        info = probe(clip)
        assert (info.video_codec, info.pix_fmt, info.has_audio) == ("h264", "yuv420p", False)
        assert 2.0 <= info.duration_s <= 4.0
        assert info.width % 2 == 0 and info.height % 2 == 0 and max(info.width, info.height) == 512
        assert SYNTHETIC_STATEMENT in info.metadata["comment"]
        frames = read_frames(clip)
        assert len(frames) == 72
        seam = np.abs(frames[-1].astype(np.int16) - frames[0].astype(np.int16)).mean()
        middle = np.abs(frames[36].astype(np.int16) - frames[0].astype(np.int16)).mean()
        assert seam < 2.5 and middle > seam  # it moves, and comes back
        (face,) = model.find_faces(frames[0])
        assert face.left_eye is not None
        peak = variation["info"]["blink_peak"]
        half = max(4, int(0.12 * face.w))
        blink = eye_change(frames, peak, face.left_eye, half)
        assert blink > 3 * eye_change(frames, 3, face.left_eye, half) + 2


def test_a_failed_run_leaves_the_garbage_collector_on(tmp_path: Path) -> None:
    """``animate`` pauses the cyclic collector during its imports; an error (here, an unreadable
    photo) must not leave it off in the calling process (a test run, a notebook)."""
    import gc

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(images.text_as_jpg())
    assert main(["animate", str(photo), "subtle blink", "--consent", "--out", str(tmp_path)]) == 2
    assert gc.isenabled()


def test_an_interrupt_during_an_import_is_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while a C extension initialises surfaces as an ImportError caused by the
    KeyboardInterrupt (pybind11's "initialization failed"), possibly re-worded as a missing
    library: the run ends as interrupted (130), not as a failed generation (4)."""
    import moderation.intake
    from livingphoto.errors import GenerationFailed

    def interrupted_import(*_: object, **__: object) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            try:
                raise ImportError("initialization failed") from interrupt
            except ImportError as error:
                raise GenerationFailed(f"the face library dlib is not installed: {error}") from None

    monkeypatch.setattr(moderation.intake, "load_image_file", interrupted_import)
    args = ["animate", str(ASTRONAUT), "subtle blink", "--consent", "--out", str(tmp_path)]
    assert main(args) == 130
    assert capsys.readouterr().err.strip() == "livingphoto: interrupted"
