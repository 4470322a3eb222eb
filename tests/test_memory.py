"""livingphoto.memory: glibc keeps freed memory for reuse in the animate process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from livingphoto.memory import reuse_freed_memory

# A child process (the setting lasts for the process): touches a 20 MB block, frees it, then
# reports the minor page faults of touching a second one of the same size.
_CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from livingphoto.memory import reuse_freed_memory
    assert reuse_freed_memory()
first = np.ones(5_000_000, dtype=np.float32)
del first
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
second = np.ones(5_000_000, dtype=np.float32)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_blocks_are_reused_instead_of_mapped_afresh() -> None:
    plain, tuned = _faults("plain"), _faults("tuned")
    # Touched afresh, 20 MB is ~5 000 faults (a few hundred with transparent huge pages, each
    # still a page the kernel zeroes); reused, next to none.
    assert plain > 50
    assert tuned < plain / 10


def test_elsewhere_it_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert reuse_freed_memory() is False
