"""Test-wide settings: everything runs offline and on loopback."""

from __future__ import annotations

import os

# No model weights or hub metadata can be fetched: every model the tests use is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
