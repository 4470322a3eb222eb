"""Ready files: how a process started with ``--ready-file`` tells its parent it is serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_ready_file(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically (readers never see half a file)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data))
    temporary.replace(path)
