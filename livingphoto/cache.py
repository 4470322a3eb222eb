"""The folder of derived, rebuildable files (``$XDG_CACHE_HOME/livingphoto``): a model in a
faster-loading format, the note that a model file passed its checksum. Anything in it may be
deleted at any time; a read-only or missing cache only makes start-up slower."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/livingphoto`` (default ``~/.cache/livingphoto``); not created here."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "livingphoto"
