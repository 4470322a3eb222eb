"""``livingphoto restore PHOTO --out FILE``: the restoration pre-pass alone (DESIGN.md §2).

Usage::

    livingphoto restore old-scan.jpg --out restored.png
    livingphoto restore old-scan.jpg --out restored.jpg --mode on --json

Writes the restored still to ``--out`` in the format its extension names (.png, .jpg/.jpeg,
.webp). In ``--mode auto`` (the default) a photo without damage is written unchanged (same
pixels). ``--json`` prints ``{"path", "restored", "restoration": {grain, scratches, dust, crease},
"notes"}``. Exit codes: 0 done, 2 unusable input or arguments, 4 restoration failed.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from livingphoto.errors import GenerationFailed, LivingPhotoError, UsageError

logger = logging.getLogger(__name__)

# Output formats by file extension (Pillow format name, save options).
OUTPUT_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"lossless": True}),
}


def register(sub: argparse._SubParsersAction[Any]) -> None:
    """Add the ``restore`` subcommand to ``sub``."""
    parser = sub.add_parser(
        "restore",
        help="clean an old scan (grain, dust, scratches, creases)",
        description="Remove grain, dust, scratches and creases from an old photo scan; "
        "clean photos pass through unchanged.",
    )
    parser.add_argument("photo", type=Path, help="JPEG, PNG or WebP photo")
    parser.add_argument(
        "--out", type=Path, required=True, help="where to write the still (.png, .jpg, .webp)"
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "on"),
        default="auto",
        help="auto: restore only damaged scans (default); on: always apply what is found",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_restore)


def output_format(path: Path) -> tuple[str, dict[str, Any]]:
    """The Pillow format and options for ``path``'s extension; ``UsageError`` if unsupported."""
    found = OUTPUT_FORMATS.get(path.suffix.lower())
    if found is None:
        raise UsageError(
            f"cannot write {path.name or path}: --out must end in .png, .jpg, .jpeg or .webp"
        )
    return found


def run_restore(args: argparse.Namespace) -> int:
    """The ``restore`` handler: every failure is one line (``LivingPhotoError``)."""
    try:
        return _run_restore(args)
    except (LivingPhotoError, KeyboardInterrupt):
        raise
    except Exception as error:
        logger.debug("restore failed", exc_info=True)
        text = " ".join(str(error).split())[:200] or type(error).__name__
        raise GenerationFailed(f"restoration failed unexpectedly: {text}") from None


def _run_restore(args: argparse.Namespace) -> int:
    from PIL import Image

    from generation.restore import restore
    from moderation.intake import load_image_file

    out: Path = args.out
    fmt, options = output_format(out)  # a bad --out fails before any work
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as restored.png")
    sanitized = load_image_file(args.photo)
    result = restore(sanitized.rgb, args.mode)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result.image, "RGB").save(out, format=fmt, **options)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror or error}") from None
    notes = [*sanitized.warnings, *result.notes]
    if args.json:
        print(json.dumps({"path": str(out), **result.to_json(), "notes": notes}))
        return 0
    found = result.report.to_json()
    if result.restored:
        print(
            f"restored {out}: grain {found['grain']}, scratches {found['scratches']}, "
            f"dust {found['dust']}, crease {found['crease']}"
        )
    else:
        print(f"no damage found: {out} has the photo unchanged")
    return 0
