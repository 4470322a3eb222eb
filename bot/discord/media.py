"""Fitting clips into a Discord channel's upload limit, and the autoplaying preview.

Discord caps a bot's upload per message (10 MiB unless the guild is boosted; an interaction tells
the exact ``attachment_size_limit``). A clip that does not fit is re-encoded smaller (a bitrate
aimed at its share of the limit, then smaller frames) rather than refused; the re-encode keeps the
"AI-generated" statement of ``generation/export.py`` in the MP4 metadata. MP4 attachments do not
autoplay in Discord, so an animated WebP showing the takes side by side (in order) goes along as a
preview, written by ``generation.export.export_clip`` (which labels it as synthetic too).

ffmpeg work runs in a worker thread (``asyncio.to_thread``) so the event loop stays responsive.

Usage::

    fitted = await fit_clips([mp4_1, mp4_2, mp4_3], budget_bytes=limit)
    preview = await make_preview(fitted, max_bytes=limit - sum(len(c) for c in fitted))
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bot.flow import Undeliverable
from generation.export import SYNTHETIC_STATEMENT, export_clip, ffmpeg_command, probe, read_frames
from livingphoto.errors import GenerationFailed

log = logging.getLogger(__name__)

ENVELOPE_BYTES = 16 * 1024  # multipart envelope and message JSON (at most 5% of the limit)
MIN_SIDE = 64
MIN_KBPS = 8
SHRINK_ATTEMPTS = 8
PREVIEW_HEIGHTS = (192, 128, 96)
PREVIEW_FPS = 12


class ClipTooLarge(Undeliverable):
    """A clip could not be made small enough for the channel's upload limit: the flow tells the
    user (``str(error)``) and does not retry."""


def envelope(limit: int) -> int:
    return min(ENVELOPE_BYTES, limit // 20)


def _even(value: float) -> int:
    return max(MIN_SIDE, int(value) // 2 * 2)


def _encode(source: Path, target: Path, width: int, height: int, kbps: int) -> None:
    command = ffmpeg_command(
        "-i",
        str(source),
        "-an",
        "-map_metadata",
        "-1",
        "-vf",
        f"scale={width}:{height}",
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
        "-metadata",
        f"comment={SYNTHETIC_STATEMENT}",
        "-metadata",
        f"description={SYNTHETIC_STATEMENT}",
        "-metadata",
        "title=AI-generated animation (livingphoto)",
        str(target),
    )
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        last = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise GenerationFailed(f"could not re-encode a clip: {last[0][:200]}")


def _shrink(clip: bytes, max_bytes: int) -> bytes:
    with tempfile.TemporaryDirectory(prefix="lp-discord-") as tmp:
        source = Path(tmp) / "in.mp4"
        target = Path(tmp) / "out.mp4"
        source.write_bytes(clip)
        info = probe(source)
        duration = max(info.duration_s, 0.1)
        scale = 1.0
        kbps = max(MIN_KBPS, int(max_bytes * 8 * 0.85 / duration / 1000))
        for attempt in range(SHRINK_ATTEMPTS):
            width, height = _even(info.width * scale), _even(info.height * scale)
            _encode(source, target, width, height, kbps)
            encoded = target.read_bytes()
            log.debug(
                "re-encode %d: %dx%d at %d kbps -> %d bytes",
                attempt,
                width,
                height,
                kbps,
                len(encoded),
            )
            if len(encoded) <= max_bytes:
                return encoded
            # x264 overshoots small targets: aim lower by the overshoot, and use smaller frames.
            kbps = max(MIN_KBPS, int(kbps * max_bytes / len(encoded) * 0.9))
            scale *= 0.8
    raise ClipTooLarge(
        f"a clip cannot be made small enough for this channel (under {max_bytes} bytes)"
    )


async def shrink_clip(clip: bytes, max_bytes: int) -> bytes:
    """One MP4 at most ``max_bytes``: unchanged if it fits, else re-encoded smaller."""
    if len(clip) <= max_bytes:
        return clip
    return await asyncio.to_thread(_shrink, clip, max_bytes)


async def fit_clips(clips: Sequence[bytes], budget_bytes: int) -> list[bytes]:
    """Every clip re-encoded as needed so that all of them together fit in ``budget_bytes``."""
    usable = budget_bytes - envelope(budget_bytes)
    if usable <= 0 or not clips:
        raise ClipTooLarge("the channel's upload limit is too small for a clip")
    if sum(len(c) for c in clips) <= usable:
        return list(clips)
    share = usable // len(clips)
    return [await shrink_clip(clip, share) for clip in clips]


def _tile(frames: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    _, h, w, _ = frames.shape
    width = max(2, round(w * height / h) // 2 * 2)
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


def _preview(clips: Sequence[bytes], max_bytes: int) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="lp-discord-") as tmp:
        decoded: list[NDArray[np.uint8]] = []
        step = 1
        for k, clip in enumerate(clips, start=1):
            path = Path(tmp) / f"take-{k}.mp4"
            path.write_bytes(clip)
            frames = read_frames(path)
            fps = len(frames) / max(probe(path).duration_s, 0.1)
            step = max(1, round(fps / PREVIEW_FPS))
            decoded.append(frames)
        length = min(len(frames) for frames in decoded)
        target = Path(tmp) / "preview.webp"
        for height in PREVIEW_HEIGHTS:
            tiles = [_tile(frames[:length:step], height) for frames in decoded]
            export_clip(np.concatenate(tiles, axis=2), target, PREVIEW_FPS, "webp")
            preview = target.read_bytes()
            if len(preview) <= max_bytes - envelope(max_bytes):
                return preview
    return None


async def make_preview(clips: Sequence[bytes], max_bytes: int) -> bytes | None:
    """An animated WebP of the takes side by side, or ``None`` if none fits (or decodes)."""
    if not clips or max_bytes <= 2 * envelope(max_bytes):
        return None
    try:
        return await asyncio.to_thread(_preview, clips, max_bytes)
    except GenerationFailed as error:
        log.warning("no preview: %s", error)
        return None
