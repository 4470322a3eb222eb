"""Backend registry: one name -> one class, imported lazily so the base install needs no torch."""

from __future__ import annotations

from generation.backend import Backend
from livingphoto.errors import UsageError

BACKEND_NAMES = ("warp", "diffusers", "sleep")


def make_backend(name: str, model: str = "", options: dict[str, str] | None = None) -> Backend:
    """Create (but do not set up) the backend called ``name``.

    ``model`` is a hub id or local directory for ``diffusers``; ``options`` are backend-specific
    (e.g. ``{"seconds": "0.2"}`` for the ``sleep`` test/benchmark backend).
    """
    opts = options or {}
    if name == "warp":
        from generation.backends.warp import WarpBackend

        return WarpBackend()
    if name == "diffusers":
        from generation.backends.diffusers import DiffusersBackend

        return DiffusersBackend(model=model or None)
    if name == "sleep":
        from generation.backends.sleep import SleepBackend

        return SleepBackend(seconds=float(opts.get("seconds", "0.5")))
    raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(BACKEND_NAMES)}")
