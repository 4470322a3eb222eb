"""Test-wide settings: everything runs offline and on loopback."""

from __future__ import annotations

import os
import tempfile

# No model weights or hub metadata can be fetched: every model the tests use is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# The CLI keeps its moderation audit in LIVINGPHOTO_DATA_DIR: give each test process its own.
os.environ.setdefault("LIVINGPHOTO_DATA_DIR", tempfile.mkdtemp(prefix="livingphoto-test-data-"))
