"""``livingphoto animate`` on photos as phones send them: HEIC, AVIF and a HEIC named ``.jpg``
(issue 13 part 2). Each runs the real command in a subprocess, as a user does."""

from __future__ import annotations

import json
from pathlib import Path

import images
import phone_images
import pytest
from test_animate_cli import SMALL, assert_one_line_error, run_all

from generation.export import probe

CASES = {
    "jpeg": ("astronaut.jpg", images.astronaut_bytes),  # the reference
    "heic": ("IMG_0001.HEIC", phone_images.astronaut_heic),
    "avif": ("download.avif", phone_images.astronaut_avif),
    "heic-named-jpg": ("IMG_0002.jpg", phone_images.astronaut_heic),
}


def test_animate_decodes_phone_formats(tmp_path: Path) -> None:
    cases: dict[str, list[str | Path]] = {}
    for name, (filename, make) in CASES.items():
        photo = tmp_path / filename
        photo.write_bytes(make())
        cases[name] = [
            photo,
            "subtle blink",
            *SMALL,
            "--consent",
            "--json",
            "--out",
            tmp_path / name,
        ]
    sizes: dict[str, tuple[int, int]] = {}
    for name, result in run_all(cases).items():
        assert result.returncode == 0, (name, result.stderr)
        report = json.loads(result.stdout)
        clip = Path(report["variations"][0]["path"])
        info = probe(clip)
        assert (info.video_codec, info.has_audio) == ("h264", False), name
        sizes[name] = (info.width, info.height)
        for produced in (tmp_path / name).iterdir():
            data = produced.read_bytes()
            assert b"LeakyCam" not in data and b"GPS" not in data, (name, produced)
    # the same crop of the same face, whatever the container
    assert sizes["heic"] == sizes["avif"] == sizes["heic-named-jpg"] == sizes["jpeg"]


def test_animate_refuses_a_truncated_heic_with_one_line(tmp_path: Path) -> None:
    photo = tmp_path / "IMG_0003.HEIC"
    data = phone_images.astronaut_heic()
    photo.write_bytes(data[: len(data) // 3])
    results = run_all({"cut": [photo, "blink", "--consent", "--out", tmp_path / "out"]})
    line = assert_one_line_error(results["cut"])
    assert "HEIC" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("kind", "expected"), [("mp4", "an MP4/MOV video")])
def test_animate_names_what_is_supported(tmp_path: Path, kind: str, expected: str) -> None:
    photo = tmp_path / f"clip.{kind}"
    photo.write_bytes(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41" + b"\x00" * 64)
    results = run_all({kind: [photo, "blink", "--consent", "--out", tmp_path / "out"]})
    line = assert_one_line_error(results[kind])
    assert expected in line and "HEIC" in line and "AVIF" in line
