"""Where the command-line tools keep their moderation state (the audit log, the consent ledger).

``livingphoto animate`` writes there and ``livingphoto audit`` reads from there, so a refusal the
CLI just recorded is the one ``audit`` lists. The service has its own ``--data-dir`` (or the
same ``LIVINGPHOTO_DATA_DIR``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from livingphoto.env import load_environ
from livingphoto.errors import UsageError


def cli_data_dir(environ: Mapping[str, str] | None = None, *, create: bool = True) -> Path:
    """``LIVINGPHOTO_DATA_DIR`` (from the environment, else a ``.env`` file) if set, else the
    user's state directory: ``$XDG_STATE_HOME/livingphoto``, or ``~/.local/state/livingphoto``
    (never the current folder). ``create``: make the folder; ``UsageError`` when it cannot be
    made."""
    env = load_environ(os.environ if environ is None else environ)
    configured = env.get("LIVINGPHOTO_DATA_DIR", "").strip()
    if configured:
        path = Path(configured)
    else:
        state = env.get("XDG_STATE_HOME", "").strip()
        path = (Path(state) if state else Path.home() / ".local" / "state") / "livingphoto"
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"cannot create the data directory {path}: {error.strerror}") from None
    return path
