"""Decoding an untrusted photo in a child process, so that a crash in a C decoder costs one photo,
not the CLI run, the service or a bot.

Used for HEIC/HEIF (libheif + libde265 through ``pi-heif``): fuzzing a damaged HEIC crashed
``pi-heif`` 1.4.0 with a segmentation fault inside the parent process. The child runs
``python -m moderation.isolated_decode KIND MAX_PIXELS`` with the file on stdin and
``moderation.intake.open_first_frame`` inside (Pillow and pi-heif only, no numpy), and answers on
stdout with one JSON line (``{"width", "height", "mode", "cols", "rows", "notes"}`` or
``{"error"}``) followed by the decoded pixels in that Pillow mode; the parent turns them into RGB
(``moderation.intake.to_rgb``). Whatever happens in the child (a crash, a hang past
``timeout_s``, garbage on stdout) the parent raises one ``UsageError`` line.

Cost: one Python start plus the imports of Pillow and pi-heif (see the report in
``decode_in_child``'s tests; a few tenths of a second on a busy 2-core machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from PIL import Image

from livingphoto.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

DEFAULT_TIMEOUT_S = 60.0
_HEADER_LIMIT = 64 * 1024
# Pillow modes sent as they are; any other is converted to RGB or RGBA in the child.
_MODES = frozenset({"RGB", "RGBA", "L", "LA", "I;16", "I;16L", "I;16B", "I", "F"})


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
    try:
        image = Image.frombytes(str(reply["mode"]), (int(reply["cols"]), int(reply["rows"])), body)
    except (KeyError, TypeError, ValueError):
        raise UsageError(
            f"the photo is a damaged {kind} file (its decoder answered badly)"
        ) from None
    from moderation.intake import to_rgb

    notes = [str(n) for n in reply.get("notes", [])]
    return to_rgb(image, kind), (int(reply["width"]), int(reply["height"])), notes


def _child(argv: list[str]) -> int:
    from moderation.intake import open_first_frame

    kind, max_pixels = argv[0], int(argv[1])
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    try:
        image, (width, height), notes, _ = open_first_frame(data, kind, max_pixels)
        if image.mode not in _MODES or "transparency" in image.info:
            has_alpha = "A" in image.mode or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
        raw = image.tobytes()
    except UsageError as error:
        out.write(json.dumps({"error": str(error)}).encode() + b"\n")
        return 0
    cols, rows = image.size
    header = {
        "width": width, "height": height, "mode": image.mode, "cols": cols, "rows": rows,
        "notes": notes,
    }  # fmt: skip
    out.write(json.dumps(header).encode() + b"\n")
    out.write(raw)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
