"""Reading configuration from the environment (and a ``.env`` file) explicitly.

Every settings class in the project is a frozen dataclass with a ``from_env`` classmethod built
from these helpers, so the variable names are visible in one place per package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from livingphoto.errors import UsageError


def load_environ(environ: Mapping[str, str], dotenv_path: Path | None = None) -> dict[str, str]:
    """The process environment layered over a ``.env`` file (the environment wins). python-dotenv
    is imported only when there is such a file (its import costs ~10 ms of every start)."""
    path = dotenv_path if dotenv_path is not None else Path(".env")
    merged: dict[str, str] = {}
    if path.is_file():
        from dotenv import dotenv_values

        merged.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    merged.update(environ)
    return merged


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value if value else default


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(
    env: Mapping[str, str], name: str, default: float, minimum: float | None = None
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise UsageError(f"{name} must be true or false, got {raw!r}")
