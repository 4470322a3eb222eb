"""Fitting clips into a Discord channel's upload limit, and the autoplaying preview.

Discord caps a bot's upload per message (10 MiB unless the guild is boosted; the interaction tells
the exact ``attachment_size_limit``). A clip that does not fit is re-encoded smaller (lower bitrate,
then a smaller frame) rather than refused. MP4 attachments do not autoplay in Discord, so one
animated WebP showing every variation side by side, numbered in order, goes along as a preview.

Everything runs the ``ffmpeg`` executable shipped inside ``imageio-ffmpeg`` in a subprocess.

Usage::

    fitted = await fit_clips([mp4_1, mp4_2, mp4_3], budget_bytes=limit)
    preview = await make_preview(fitted, max_bytes=limit - sum(len(c) for c in fitted))
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg

from livingphoto.errors import GenerationFailed

log = logging.getLogger(__name__)

# Leave room for the multipart envelope and the message JSON (at most 5% of the limit).
ENVELOPE_BYTES = 16 * 1024


def envelope(limit: int) -> int:
    return min(ENVELOPE_BYTES, limit // 20)


MIN_SIDE = 64
PREVIEW_HEIGHTS = (192, 128, 96)
PREVIEW_FPS = 12


class ClipTooLarge(GenerationFailed):
    """A clip could not be made small enough for the channel's upload limit."""


def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def _ffmpeg(*args: str) -> str:
    """Run ffmpeg; return its stderr (where it prints stream info). Raise on failure."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    text = stderr.decode("utf-8", "replace")
    if process.returncode != 0:
        last = text.strip().splitlines()[-1] if text.strip() else "no output"
        raise GenerationFailed(f"ffmpeg failed: {last}")
    return text


async def probe(path: Path) -> tuple[int, int, float]:
    """Width, height and duration (seconds) of a video file."""
    text = await _ffmpeg("-i", str(path), "-map", "0:v:0", "-f", "null", "-")
    size = re.search(r"Video: .*?(\d{2,5})x(\d{2,5})", text)
    times = re.findall(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if size is None:
        raise GenerationFailed("the clip has no video stream")
    duration = 0.0
    if times:
        h, m, s = times[-1]
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    return int(size.group(1)), int(size.group(2)), max(duration, 0.1)


def _even(value: float) -> int:
    return max(MIN_SIDE, int(value) // 2 * 2)


async def shrink_clip(clip: bytes, max_bytes: int) -> bytes:
    """Re-encode one MP4 to at most ``max_bytes``: lower bitrate first, then smaller frames."""
    if len(clip) <= max_bytes:
        return clip
    with tempfile.TemporaryDirectory(prefix="lp-discord-") as tmp:
        source = Path(tmp) / "in.mp4"
        target = Path(tmp) / "out.mp4"
        source.write_bytes(clip)
        width, height, duration = await probe(source)
        scale = 1.0
        for attempt in range(6):
            bits = max_bytes * 8 * 0.85 / duration
            kbps = max(16, int(bits / 1000))
            w, h = _even(width * scale), _even(height * scale)
            await _ffmpeg(
                "-y",
                "-i",
                str(source),
                "-an",
                "-vf",
                f"scale={w}:{h}",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                "-b:v",
                f"{kbps}k",
                "-maxrate",
                f"{kbps}k",
                "-bufsize",
                f"{kbps * 2}k",
                "-movflags",
                "+faststart",
                str(target),
            )
            encoded = target.read_bytes()
            log.debug(
                "re-encoded clip attempt %d: %dx%d %d kbps -> %d bytes",
                attempt,
                w,
                h,
                kbps,
                len(encoded),
            )
            if len(encoded) <= max_bytes:
                return encoded
            if w <= MIN_SIDE or h <= MIN_SIDE:
                break
            scale *= 0.7
    raise ClipTooLarge(f"a clip could not be made smaller than {max_bytes} bytes for this channel")


async def fit_clips(clips: Sequence[bytes], budget_bytes: int) -> list[bytes]:
    """Every clip re-encoded as needed so that all of them together fit in ``budget_bytes``."""
    usable = budget_bytes - envelope(budget_bytes)
    if usable <= 0 or not clips:
        raise ClipTooLarge("the channel's upload limit is too small for a clip")
    if sum(len(c) for c in clips) <= usable:
        return list(clips)
    share = usable // len(clips)
    return [await shrink_clip(clip, share) for clip in clips]


async def make_preview(clips: Sequence[bytes], max_bytes: int) -> bytes | None:
    """An animated WebP of the clips side by side (in order), or ``None`` if none fits."""
    if not clips or max_bytes <= 2 * envelope(max_bytes):
        return None
    with tempfile.TemporaryDirectory(prefix="lp-discord-") as tmp:
        inputs: list[str] = []
        for k, clip in enumerate(clips, start=1):
            path = Path(tmp) / f"clip{k}.mp4"
            path.write_bytes(clip)
            inputs += ["-i", str(path)]
        target = Path(tmp) / "preview.webp"
        for height in PREVIEW_HEIGHTS:
            chains = [
                f"[{i}:v]fps={PREVIEW_FPS},scale=-2:{height}:flags=bicubic,setsar=1[v{i}]"
                for i in range(len(clips))
            ]
            labels = "".join(f"[v{i}]" for i in range(len(clips)))
            stack = (
                f"{labels}hstack=inputs={len(clips)}:shortest=1[out]"
                if len(clips) > 1
                else f"{labels}null[out]"
            )
            try:
                await _ffmpeg(
                    "-y",
                    *inputs,
                    "-filter_complex",
                    ";".join([*chains, stack]),
                    "-map",
                    "[out]",
                    "-an",
                    "-c:v",
                    "libwebp_anim",
                    "-loop",
                    "0",
                    "-quality",
                    "60",
                    "-lossless",
                    "0",
                    str(target),
                )
            except GenerationFailed as error:
                log.warning("could not make the preview: %s", error)
                return None
            preview = target.read_bytes()
            if len(preview) <= max_bytes - envelope(max_bytes):
                return preview
    return None
