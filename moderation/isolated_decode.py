"""Decoding an untrusted photo in a child process, so that a crash in a C decoder costs one photo,
not the CLI run, the service or a bot.

Used for HEIC/HEIF (libheif + libde265 through ``pi-heif``): fuzzing a damaged HEIC crashed
``pi-heif`` 1.4.0 with a segmentation fault inside the parent process. The child runs
``python -m moderation.isolated_decode KIND MAX_PIXELS`` with the file on stdin and
``moderation.intake.decode_pixels`` inside, and answers on stdout with one JSON line
(``{"width", "height", "rows", "cols", "notes"}`` or ``{"error"}``) followed by the raw RGB bytes
(rows x cols x 3, uint8). Whatever happens in the child (a crash, a hang past ``timeout_s``,
garbage on stdout) the parent raises one ``UsageError`` line.

Cost: one Python start plus the imports of Pillow and pi-heif, about 0.1-0.3 s per HEIC photo.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from numpy.typing import NDArray

from livingphoto.errors import UsageError

DEFAULT_TIMEOUT_S = 60.0
_HEADER_LIMIT = 64 * 1024


def decode_in_child(
    data: bytes, kind: str, max_pixels: int, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[NDArray[np.uint8], tuple[int, int], list[str]]:
    """``moderation.intake.decode_pixels`` run in a child process; same result, same errors.

    Returns (RGB pixels of shape (rows, cols, 3), stored (width, height), notes).
    """
    try:
        done = subprocess.run(
            [sys.executable, "-m", "moderation.isolated_decode", kind, str(max_pixels)],
            input=data,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(
            f"the photo could not be decoded as {kind} (the decoder took over {timeout_s:g} s)"
        ) from None
    except OSError as error:
        raise UsageError(f"the {kind} decoder could not be started ({error})") from None
    if done.returncode != 0:
        raise UsageError(f"the photo is a damaged {kind} file (its decoder stopped)")
    header, _, body = done.stdout.partition(b"\n")
    try:
        reply = json.loads(header[:_HEADER_LIMIT])
    except ValueError:
        raise UsageError(
            f"the photo is a damaged {kind} file (no answer from its decoder)"
        ) from None
    if not isinstance(reply, dict):
        raise UsageError(f"the photo is a damaged {kind} file (no answer from its decoder)")
    if "error" in reply:
        raise UsageError(str(reply["error"]))
    rows, cols = int(reply["rows"]), int(reply["cols"])
    if rows * cols * 3 != len(body):
        raise UsageError(f"the photo is a damaged {kind} file (its decoder answered badly)")
    rgb = np.frombuffer(body, dtype=np.uint8).reshape(rows, cols, 3).copy()
    notes = [str(n) for n in reply.get("notes", [])]
    return rgb, (int(reply["width"]), int(reply["height"])), notes


def _child(argv: list[str]) -> int:
    from moderation.intake import decode_pixels

    kind, max_pixels = argv[0], int(argv[1])
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    try:
        rgb, (width, height), notes = decode_pixels(data, kind, max_pixels)
    except UsageError as error:
        out.write(json.dumps({"error": str(error)}).encode() + b"\n")
        return 0
    rows, cols = int(rgb.shape[0]), int(rgb.shape[1])
    header = {"width": width, "height": height, "rows": rows, "cols": cols, "notes": notes}
    out.write(json.dumps(header).encode() + b"\n")
    out.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
