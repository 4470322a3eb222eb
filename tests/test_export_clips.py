"""Loop export: H.264 yuv420p MP4 without audio, tagged synthetic; GIF and WebP; decoding back."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from generation.export import SYNTHETIC_STATEMENT, export_clip, probe, read_frames
from generation.quality import loop_seam
from livingphoto.errors import GenerationFailed


def looping_frames(count: int = 25, height: int = 96, width: int = 128) -> NDArray[np.uint8]:
    """A smooth periodic pattern whose last frame equals its first."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        phase = 2 * np.pi * t / (count - 1)
        value = 128 + 60 * np.sin(xs / 9.0 + 1.5 * np.sin(phase)) * np.cos(ys / 13.0)
        frames[t] = np.clip(value, 0, 255).astype(np.uint8)[:, :, None]
    frames[-1] = frames[0]
    return frames


def test_mp4_is_h264_yuv420p_silent_tagged(tmp_path: Path) -> None:
    frames = looping_frames(49)
    path = export_clip(frames, tmp_path / "clip.mp4", fps=24)
    info = probe(path)
    assert info.video_codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert not info.has_audio
    assert (info.width, info.height) == (128, 96)
    assert 1.9 <= info.duration_s <= 2.2
    assert SYNTHETIC_STATEMENT in info.metadata["comment"]
    assert "AI-generated" in info.metadata["description"]
    data = path.read_bytes()
    # +faststart: the index (moov) comes before the media data (mdat).
    assert data.index(b"moov") < data.index(b"mdat")


def test_loop_survives_encoding(tmp_path: Path) -> None:
    frames = looping_frames(25)
    decoded = read_frames(export_clip(frames, tmp_path / "loop.mp4", fps=24))
    assert decoded.shape == frames.shape
    error = np.abs(decoded.astype(np.int16) - frames.astype(np.int16)).mean()
    seam = np.abs(decoded[-1].astype(np.int16) - decoded[0].astype(np.int16)).mean()
    assert error < 4  # a faithful encode
    assert seam <= 2 * error + 0.5  # first and last frames equal up to encoding
    jumped = frames.copy()
    jumped[-1] = frames[6]  # the furthest pose from the first
    decoded_jump = read_frames(export_clip(jumped, tmp_path / "jump.mp4", fps=24))
    assert loop_seam(decoded_jump) > loop_seam(decoded) + 1.0


def test_odd_sizes_are_made_even(tmp_path: Path) -> None:
    frames = looping_frames(9, height=51, width=77)
    info = probe(export_clip(frames, tmp_path / "odd.mp4", fps=12))
    assert (info.width, info.height) == (76, 50)


def test_gif_and_webp_loop_and_say_synthetic(tmp_path: Path) -> None:
    frames = looping_frames(13)
    gif = export_clip(frames, tmp_path / "clip.gif", fps=12, fmt="gif")
    webp = export_clip(frames, tmp_path / "clip.webp", fps=12, fmt="webp")
    with Image.open(io.BytesIO(gif.read_bytes())) as im:
        assert getattr(im, "n_frames", 1) == 13
        assert SYNTHETIC_STATEMENT in im.info["comment"].decode()
    with Image.open(io.BytesIO(webp.read_bytes())) as im:
        assert getattr(im, "n_frames", 1) == 13
        assert b"trainedAlgorithmicMedia" in im.info["xmp"]
    assert read_frames(gif).shape[0] == 13


def test_bad_frames_and_missing_clips(tmp_path: Path) -> None:
    with pytest.raises(GenerationFailed):
        export_clip(np.zeros((4, 8, 8), dtype=np.uint8), tmp_path / "x.mp4", fps=8)
    with pytest.raises(GenerationFailed, match="no clip"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(GenerationFailed):
        read_frames(tmp_path / "junk.mp4")


@pytest.mark.skipif(sys.platform != "linux", reason="F_SETPIPE_SZ is Linux's")
def test_the_pipe_to_ffmpeg_holds_a_whole_frame(tmp_path: Path) -> None:
    """On Linux the pipe is widened to a frame (up to 1 MiB): one write per frame."""
    import fcntl

    from generation.export import PIPE_BYTES, ClipWriter

    writer = ClipWriter(tmp_path / "wide.mp4", 12, "mp4", (240, 320))
    try:
        size = fcntl.fcntl(writer._process.stdin.fileno(), fcntl.F_GETPIPE_SZ)
    finally:
        writer.abort()
    assert 320 * 240 * 3 // 2 <= size <= PIPE_BYTES
    assert not (tmp_path / "wide.mp4").exists()  # abort removes the partial clip


def test_an_mp4_on_two_x264_threads_is_the_same_loop(tmp_path: Path) -> None:
    """The service encodes a chat's first take on two threads: same format, same frames."""
    from generation.export import ClipWriter

    frames = looping_frames(16, 96, 128)
    paths = []
    for threads in (1, 2):
        writer = ClipWriter(tmp_path / f"t{threads}.mp4", 12, "mp4", frames.shape[1:3], threads)
        for frame in frames:
            writer.write(frame)
        paths.append(writer.close())
    one, two = (read_frames(path) for path in paths)
    assert one.shape == two.shape == frames.shape
    assert np.abs(one.astype(int) - two.astype(int)).mean() < 1.0
    assert probe(paths[1]).metadata["comment"] == SYNTHETIC_STATEMENT


def test_a_webp_of_frames_that_never_change_is_a_labelled_still(tmp_path: Path) -> None:
    """libwebp writes one plain image when every frame is the same (a flat picture that does
    not move): it still gets the extended header and the synthetic-content XMP, and decodes."""
    frames = np.zeros((12, 96, 128, 3), dtype=np.uint8)
    frames[:, :, :64] = (255, 0, 0)
    frames[:, :, 64:] = (0, 0, 255)
    path = export_clip(frames, tmp_path / "still.webp", 12, "webp")
    data = path.read_bytes()
    assert data[12:16] == b"VP8X" and data[20] & 0x04  # extended, XMP flag set
    assert int.from_bytes(data[24:27], "little") + 1 == 128
    assert int.from_bytes(data[27:30], "little") + 1 == 96
    assert b"trainedAlgorithmicMedia" in data and SYNTHETIC_STATEMENT.encode() in data
    with Image.open(path) as image:
        assert image.format == "WEBP" and image.size == (128, 96)
        rgb = np.asarray(image.convert("RGB"))
    assert rgb[48, 10].tolist()[0] > 200 and rgb[48, 120].tolist()[2] > 200
    assert read_frames(path).shape[1:] == (96, 128, 3)
