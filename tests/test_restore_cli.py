"""``livingphoto restore`` and ``animate --restore`` in subprocesses: outputs, JSON, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scan_damage
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ASTRONAUT = ROOT / "examples" / "astronaut.jpg"


def livingphoto(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "livingphoto", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def damaged_scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A damaged, sepia scan of the astronaut (384 px), saved as a JPEG like a scanner would."""
    rng = np.random.default_rng(7)
    photo = Image.open(ASTRONAUT).convert("RGB").resize((384, 384), Image.Resampling.LANCZOS)
    aged = scan_damage.age(np.asarray(photo, dtype=np.uint8), rng)
    scan = scan_damage.damage(aged, rng, scan_damage.DamageSpec(grain=11.0, scratches=3, dust=60))
    path = tmp_path_factory.mktemp("scan") / "scan.jpg"
    Image.fromarray(scan).save(path, quality=92)
    return path


def test_clean_photo_is_written_with_the_same_pixels(tmp_path: Path) -> None:
    out = tmp_path / "restored.png"
    result = livingphoto("restore", ASTRONAUT, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["restored"] is False
    assert set(report["restoration"]) >= {"grain", "scratches", "dust", "crease"}
    original = np.asarray(Image.open(ASTRONAUT).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), original)


def test_damaged_scan_is_restored_in_each_output_format(tmp_path: Path, damaged_scan: Path) -> None:
    for name, fmt in (("a.png", "PNG"), ("b.JPG", "JPEG"), ("c.webp", "WEBP")):
        out = tmp_path / "sub" / name
        result = livingphoto("restore", damaged_scan, "--out", out)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("restored ")
        with Image.open(out) as im:
            assert im.format == fmt
            assert im.size == (384, 384)


def test_bad_arguments_and_input_exit_2_with_one_line(tmp_path: Path) -> None:
    bmp = one_line_error(livingphoto("restore", ASTRONAUT, "--out", tmp_path / "x.bmp"))
    assert ".png, .jpg" in bmp
    assert "no such file" in one_line_error(
        livingphoto("restore", tmp_path / "missing.jpg", "--out", tmp_path / "x.png")
    )
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo at all\n" * 10)
    assert "not an image" in one_line_error(
        livingphoto("restore", text, "--out", tmp_path / "y.png")
    )
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (40, 40), (90, 80, 70)).save(tiny)
    assert "too small" in one_line_error(livingphoto("restore", tiny, "--out", tmp_path / "z.png"))
    folder = tmp_path / "out.png"
    folder.mkdir()
    assert "folder" in one_line_error(livingphoto("restore", ASTRONAUT, "--out", folder))
    assert one_line_error(livingphoto("restore", ASTRONAUT)).startswith("livingphoto restore:")


def test_grey_16_bit_and_mostly_border_scans_get_an_answer(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    grey = np.asarray(Image.open(ASTRONAUT).convert("L").resize((256, 256)), dtype=np.uint16)
    wide = (grey * 257 + rng.integers(0, 200, grey.shape)).astype(np.uint16)
    sixteen = tmp_path / "sixteen.png"
    Image.fromarray(wide).save(sixteen)  # a 16-bit grey PNG, as film scanners write
    border = np.full((900, 700, 3), 248, dtype=np.uint8)
    border[350:550, 250:450] = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((200, 200)))
    bordered = tmp_path / "bordered.png"
    Image.fromarray(border).save(bordered)
    grey_png = tmp_path / "grey.png"
    Image.fromarray(grey.astype(np.uint8)).save(grey_png)
    for source in (sixteen, bordered, grey_png):
        out = tmp_path / f"{source.stem}-out.png"
        result = livingphoto("restore", source, "--out", out, "--json")
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout)["restored"], bool)
        with Image.open(out) as im:
            assert im.mode == "RGB"


def test_animate_says_whether_it_restored(tmp_path: Path, damaged_scan: Path) -> None:
    small = ["--variations", "1", "--seconds", "1", "--fps", "8", "--size", "128", "--consent"]
    auto = livingphoto(
        "animate", damaged_scan, "subtle blink", *small, "--out", tmp_path / "a", "--json"
    )
    assert auto.returncode == 0, auto.stderr
    summary = json.loads(auto.stdout)
    assert summary["restored"] is True
    assert summary["restoration"]["grain"] > 4
    assert summary["variations"][0]["scores"]["identity"] >= 0.0
    off = livingphoto(
        "animate", damaged_scan, "subtle blink", *small, "--restore", "off", "--json",
        "--out", tmp_path / "b",
    )  # fmt: skip
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["restored"] is False
    clean = livingphoto(
        "animate", ASTRONAUT, "subtle blink", *small, "--out", tmp_path / "c", "--json"
    )
    assert json.loads(clean.stdout)["restored"] is False
    bad = livingphoto("animate", ASTRONAUT, "blink", "--restore", "maybe", "--consent")
    assert "--restore" in one_line_error(bad)


def test_restored_png_round_trips_through_intake(tmp_path: Path, damaged_scan: Path) -> None:
    from moderation.intake import load_image

    out = tmp_path / "r.png"
    assert livingphoto("restore", damaged_scan, "--out", out).returncode == 0
    image = load_image(out.read_bytes())
    assert image.rgb.shape == (384, 384, 3)
    assert io.BytesIO(image.to_png()).getbuffer().nbytes > 0
