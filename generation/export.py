"""Loop export and decoding with the ffmpeg executable shipped by imageio-ffmpeg.

MP4: H.264 (libx264), yuv420p, even sizes, ``+faststart``, no audio stream, and metadata that
says the clip is synthetic (``comment``, ``description``, ``title``). GIF: palettegen/paletteuse,
with the same statement in a GIF comment block. WebP: animated libwebp with the statement in an
XMP chunk. ``read_frames`` and ``probe`` decode existing clips (tests, scoring, the service).
"""

from __future__ import annotations

import contextlib
import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import imageio_ffmpeg
import numpy as np
from numpy.typing import NDArray

from livingphoto.errors import GenerationFailed
from moderation.provenance import SYNTHETIC_LABEL

ClipFormat = Literal["mp4", "gif", "webp"]

SYNTHETIC_STATEMENT = SYNTHETIC_LABEL
MP4_PRESET = "veryfast"
MP4_CRF = 20
PIPE_BYTES = 1 << 20  # the most /proc/sys/fs/pipe-max-size allows by default


def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable bundled with imageio-ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_command(*args: str) -> list[str]:
    """``ffmpeg ARGS`` with the bundled executable: errors only on stderr, never reading the
    terminal, overwriting its output file."""
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]


def export_clip(frames: NDArray[np.uint8], path: Path, fps: int, fmt: ClipFormat = "mp4") -> Path:
    """Encode ``frames`` (T, H, W, 3) RGB uint8 to ``path`` in ``fmt``; return ``path``."""
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise GenerationFailed("frames must be a (T, H, W, 3) uint8 array")
    writer = ClipWriter(path, fps, fmt, frames.shape[1:3])
    try:
        for frame in frames:
            writer.write(frame)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


class ClipWriter:
    """One clip encoded as its frames come: an ffmpeg process fed on stdin, one frame at a time.

    ``ClipWriter(path, fps, fmt, (height, width))`` starts ffmpeg; ``write(frame)`` sends one
    (H, W, 3) RGB uint8 frame (odd sizes lose their last column/row: yuv420p needs even ones);
    ``close()`` waits for ffmpeg, adds the synthetic-content label (GIF comment, WebP XMP; MP4
    carries it in its metadata) and returns ``path``; ``abort()`` kills ffmpeg and removes the
    partial file. MP4 frames are converted to planar YUV 4:2:0 by OpenCV here (BT.601, limited
    range: what ffmpeg's own rgb24 -> yuv420p conversion gives), which saves ffmpeg's slower
    swscale pass. Raises ``GenerationFailed`` when ffmpeg fails or stops reading.
    """

    def __init__(
        self, path: Path, fps: int, fmt: ClipFormat, size: tuple[int, ...], threads: int = 1
    ) -> None:
        """``threads``: x264's threads (MP4); 1 when clips are encoded side by side."""
        if fmt not in ("mp4", "gif", "webp"):
            raise GenerationFailed(f"unknown clip format {fmt!r}")
        height, width = int(size[0]), int(size[1])
        self.path = path
        self.fmt: ClipFormat = fmt
        self._height, self._width = height - height % 2, width - width % 2
        if self._height < 2 or self._width < 2:
            raise GenerationFailed(f"frames of {width}x{height} are too small to encode")
        self._broken = False
        process = _start(encode_command(path, fps, fmt, self._width, self._height, threads))
        assert process.stdin is not None and process.stderr is not None  # both piped
        self._process, self._stdin, self._stderr = process, process.stdin, process.stderr
        pixels = self._width * self._height
        _widen_pipe(self._stdin, pixels * 3 // 2 if fmt == "mp4" else pixels * 3)

    def write(self, frame: NDArray[np.uint8]) -> None:
        """Send one (H, W, 3) RGB uint8 frame of the size given at construction."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise GenerationFailed("a frame must be an (H, W, 3) uint8 array")
        if self._broken:
            return  # ffmpeg stopped reading: close() reports why
        frame = frame[: self._height, : self._width]
        if self.fmt == "mp4":
            data = np.asarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), dtype=np.uint8)
        else:
            data = np.ascontiguousarray(frame)
        try:
            self._stdin.write(data.data)
        except BrokenPipeError:
            self._broken = True

    def close(self) -> Path:
        """Finish the clip; return its path. Raises ``GenerationFailed`` if ffmpeg failed."""
        process = self._process
        try:
            with contextlib.suppress(BrokenPipeError):
                self._stdin.close()
            stderr = self._stderr.read()
            process.wait()
        except BaseException:
            self.abort()
            raise
        if process.returncode != 0 or self._broken:
            last = (stderr or b"").decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise GenerationFailed(f"ffmpeg could not write {self.path.name}: {last[0][:200]}")
        if self.fmt == "gif":
            self.path.write_bytes(_gif_with_comment(self.path.read_bytes(), SYNTHETIC_STATEMENT))
        elif self.fmt == "webp":
            data = _webp_with_xmp(
                self.path.read_bytes(), _xmp(SYNTHETIC_STATEMENT), (self._width, self._height)
            )
            self.path.write_bytes(data)
        return self.path

    def abort(self) -> None:
        """Stop ffmpeg and remove what it wrote (idempotent)."""
        process = self._process
        if process.poll() is None:
            process.kill()
        with contextlib.suppress(OSError, ValueError):
            self._stdin.close()
        with contextlib.suppress(OSError, ValueError):
            self._stderr.close()
        process.wait()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def _widen_pipe(stream: Any, wanted: int) -> None:
    """Let the pipe to ffmpeg hold a whole frame (Linux; up to the 1 MiB an unprivileged
    process may ask for): one write per frame instead of one per 64 KiB, and fewer thread
    switches between the feeding thread and ffmpeg. Elsewhere, or when refused: as it is."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, min(wanted, PIPE_BYTES))
    except (ImportError, AttributeError, OSError, ValueError):
        pass


def encode_command(
    path: Path, fps: int, fmt: ClipFormat, width: int, height: int, threads: int = 1
) -> list[str]:
    """The ffmpeg command that encodes raw frames of ``width`` x ``height`` from stdin into
    ``path`` (what ``ClipWriter`` runs): MP4 from planar YUV 4:2:0, GIF and WebP from RGB."""
    pix_fmt = "yuv420p" if fmt == "mp4" else "rgb24"
    command = ffmpeg_command(
        "-f",
        "rawvideo",
        "-framerate",
        str(fps),
        "-pix_fmt",
        pix_fmt,
        "-s",
        f"{width}x{height}",
        "-i",
        "pipe:",
    )
    if fmt == "mp4":
        return [
            *command,
            "-an",
            "-map_metadata",
            "-1",
            "-metadata:g:0",
            f"comment={SYNTHETIC_STATEMENT}",
            "-metadata:g:1",
            f"description={SYNTHETIC_STATEMENT}",
            "-metadata:g:2",
            "title=AI-generated animation (livingphoto)",
            "-metadata:g:3",
            "encoder=livingphoto",
            "-c:v",
            "libx264",
            "-preset",
            MP4_PRESET,
            "-crf",
            str(MP4_CRF),
            "-x264-params",
            "rc-lookahead=10",
            "-threads",
            str(max(1, threads)),
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            str(path),
        ]
    if fmt == "gif":
        return [
            *command,
            "-filter_complex",
            "[0]split=2[s0][s1];[s0]palettegen=max_colors=256:stats_mode=diff[s2];"
            "[s1][s2]paletteuse=bayer_scale=4:dither=bayer[s3]",
            "-map",
            "[s3]",
            "-loop",
            "0",
            "-f",
            "gif",
            str(path),
        ]
    return [
        *command,
        "-an",
        "-c:v",
        "libwebp_anim",
        "-lossless",
        "0",
        "-quality",
        "80",
        "-loop",
        "0",
        "-f",
        "webp",
        str(path),
    ]


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    """Start ffmpeg with stdin and stderr piped."""
    return subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)


def _gif_with_comment(data: bytes, text: str) -> bytes:
    """Insert a GIF Comment Extension right after the global colour table."""
    if not data.startswith((b"GIF87a", b"GIF89a")) or len(data) < 13:
        raise GenerationFailed("ffmpeg wrote an invalid GIF")
    packed = data[10]
    table = 3 * (2 ** ((packed & 0x07) + 1)) if packed & 0x80 else 0
    at = 13 + table
    payload = text.encode("ascii", "replace")
    blocks = b"".join(
        bytes([len(payload[i : i + 255])]) + payload[i : i + 255]
        for i in range(0, len(payload), 255)
    )
    return b"GIF89a" + data[6:at] + b"\x21\xfe" + blocks + b"\x00" + data[at:]


def _xmp(text: str) -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></dc:description>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _webp_with_xmp(data: bytes, xmp: bytes, size: tuple[int, int]) -> bytes:
    """Append an ``XMP `` chunk to a WebP and set its XMP flag. An extended (VP8X) file gets
    the chunk; a simple one (a single ``VP8 `` or ``VP8L`` image: libwebp's animation encoder
    writes that when every frame is the same, e.g. a flat picture that does not move) is first
    given the VP8X header that metadata needs, with the canvas ``size`` (width, height)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise GenerationFailed("ffmpeg did not write a WebP file")
    if data[12:16] in (b"VP8 ", b"VP8L"):
        width, height = size
        header = struct.pack("<I", 0) + (width - 1).to_bytes(3, "little")
        header += (height - 1).to_bytes(3, "little")
        data = data[:12] + b"VP8X" + struct.pack("<I", len(header)) + header + data[12:]
    elif data[12:16] != b"VP8X":
        raise GenerationFailed("ffmpeg wrote a WebP of an unknown layout")
    body = bytearray(data[12:])
    body[8] |= 0x04  # VP8X flags byte: XMP metadata present
    chunk = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) % 2 else b"")
    body += chunk
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + bytes(body)


@dataclass(frozen=True)
class ClipInfo:
    """What ``ffmpeg -i`` reports about a clip."""

    width: int
    height: int
    duration_s: float
    video_codec: str
    pix_fmt: str
    has_audio: bool
    metadata: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def probe(path: Path) -> ClipInfo:
    """Container and stream facts of ``path`` (parsed from ffmpeg's own report)."""
    if not path.is_file():
        raise GenerationFailed(f"no clip at {path}")
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    report = result.stderr
    video = re.search(r"Stream #\S+.*?: Video: (\w+)[^,\n]*,\s*(\w+)[^\n]*?,\s*(\d+)x(\d+)", report)
    if video is None:
        raise GenerationFailed(f"{path.name} has no video stream")
    duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", report)
    seconds = (
        int(duration.group(1)) * 3600 + int(duration.group(2)) * 60 + float(duration.group(3))
        if duration
        else 0.0
    )
    metadata: dict[str, str] = {}
    block = re.search(r"\n\s*Metadata:\n((?:\s{4,}\S.*\n)+)", report)
    if block:
        for line in block.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip():
                metadata[key.strip().lower()] = value.strip()
    return ClipInfo(
        width=int(video.group(3)),
        height=int(video.group(4)),
        duration_s=seconds,
        video_codec=video.group(1),
        pix_fmt=video.group(2),
        has_audio=bool(re.search(r"Stream #\S+.*?: Audio:", report)),
        metadata=metadata,
        raw=report,
    )


def read_frames(path: Path) -> NDArray[np.uint8]:
    """Decode every frame of the clip at ``path`` as (T, H, W, 3) RGB uint8."""
    info = probe(path)
    result = subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(path),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:",
        ],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise GenerationFailed(f"cannot decode {path.name}: {message[0][:200]}")
    frame_bytes = info.width * info.height * 3
    count = len(result.stdout) // frame_bytes
    if count == 0:
        raise GenerationFailed(f"{path.name} has no frames")
    data = np.frombuffer(result.stdout[: count * frame_bytes], dtype=np.uint8)
    return data.reshape(count, info.height, info.width, 3).copy()
