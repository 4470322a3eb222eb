"""Reaching the Hugging Face Hub for a model, failing fast and clearly when it cannot be reached.

huggingface_hub retries a refused connection five times with sleeps of up to 8 s, and a model
missing from the local cache while offline surfaces as "does not appear to have a file named …".
Before anything is fetched, ``hub_access(model_id)`` decides how the model can be had:

- ``HF_HUB_OFFLINE`` set: from the local cache only (``offline=True``);
- otherwise a TCP connection to the hub endpoint (``HF_ENDPOINT``, or the HTTPS proxy when one
  is set) is tried for ``PROBE_TIMEOUT_S`` seconds; when it fails, the cache only, with the cause;
- else the network, as usual.

``not_cached_message`` is the one line for "cannot be had": it names the cause and the fixes
(set ``HF_HUB_OFFLINE`` with a filled cache, ``hf download`` first, or a local folder).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# Seconds the connectivity probe waits for the hub (or the proxy) to accept a connection.
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class HubAccess:
    offline: bool  # True: use the local cache only (local_files_only=True)
    reason: str  # why offline: "HF_HUB_OFFLINE is set", "cannot reach … (…)"; "" online


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _offline_env() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _probe_target(endpoint: str) -> tuple[str, int, str]:
    """(host, port, what) to connect to: the HTTPS proxy if set, else the endpoint itself."""
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        proxy = os.environ.get(name, "").strip()
        if proxy:
            parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if parts.hostname:
                return parts.hostname, parts.port or 80, f"the proxy {parts.hostname}"
    parts = urlsplit(endpoint)
    host = parts.hostname or "huggingface.co"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port, endpoint


def probe(endpoint: str, timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """ "" when a TCP connection to the hub (or its proxy) opens within ``timeout_s``; else why not."""
    host, port, what = _probe_target(endpoint)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return ""
    except TimeoutError:
        return f"cannot reach {what} (no answer in {timeout_s:g} s)"
    except OSError as exc:
        detail = exc.strerror or type(exc).__name__
        return f"cannot reach {what} ({detail.lower()})"


def hub_access() -> HubAccess:
    """How models from the hub can be had right now (see the module docstring)."""
    if _offline_env():
        return HubAccess(offline=True, reason="HF_HUB_OFFLINE is set")
    why = probe(_endpoint())
    return HubAccess(offline=bool(why), reason=why)


def download_command(model: str) -> str:
    """The ``hf download`` command that fetches ``model`` (a hub id, or a file URL on the hub)."""
    parts = urlsplit(model)
    if parts.scheme in ("http", "https"):
        # https://huggingface.co/{org}/{repo}/blob/{revision}/{file}
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) >= 5 and segments[2] in ("blob", "resolve"):
            return f"hf download {segments[0]}/{segments[1]} {'/'.join(segments[4:])}"
    return f"hf download {model}"


def not_cached_message(model: str, access: HubAccess) -> str:
    """One line: model ``model`` cannot be had offline, why, and the three ways out."""
    fixes = (
        f"download it first with `{download_command(model)}` where there is network"
        + ("" if access.reason == "HF_HUB_OFFLINE is set" else " (then set HF_HUB_OFFLINE=1)")
        + ", or give a local folder with --model DIR"
    )
    return f"model {model} is not in the local Hugging Face cache and {access.reason}: {fixes}"
