"""Waiting out a dependency that stopped answering (Redis): back-off and outage bookkeeping.

``Backoff`` gives capped exponential delays with jitter, so that many workers that lost the same
Redis do not all knock on it in the same millisecond when it comes back. ``Outage`` logs the
loss once and the return once (with how long it lasted), instead of one line per retry.
"""

from __future__ import annotations

import logging
import random
import time


class Backoff:
    """Delays for retry ``n`` = 0, 1, 2, ...: uniform in ``[d/2, d]`` with ``d = min(cap, base·2ⁿ)``.

    ``base_s`` and ``cap_s`` are seconds (``0 < base_s <= cap_s``, else ``ValueError``).
    ``reset()`` after a success starts again from ``base_s``.
    """

    def __init__(self, base_s: float = 0.1, cap_s: float = 5.0, rng: random.Random | None = None):
        if not 0 < base_s <= cap_s:
            raise ValueError(f"need 0 < base_s <= cap_s, got {base_s} and {cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self._rng = rng or random.Random()
        self._tries = 0

    def next_delay(self) -> float:
        """The next delay in seconds (never more than ``cap_s``)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self._tries, 32))
        self._tries += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._tries = 0


class Outage:
    """Up/down state of one dependency, logged on change only.

    ``failed(error)`` marks it down (a warning the first time), ``ok()`` marks it up again (an
    info line with the outage's length). ``down_for_s`` is 0.0 while it is up.
    """

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self._log = logger
        self._down_since: float | None = None
        self.outages = 0

    @property
    def up(self) -> bool:
        return self._down_since is None

    @property
    def down_for_s(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def failed(self, error: BaseException) -> bool:
        """Record a failure; True if this starts an outage (the caller may react once)."""
        if self._down_since is not None:
            return False
        self._down_since = time.monotonic()
        self.outages += 1
        self._log.warning(
            "%s unreachable (%s); retrying with back-off", self.what, _one_line(error)
        )
        return True

    def ok(self) -> bool:
        """Record a success; True if this ends an outage."""
        if self._down_since is None:
            return False
        lasted = time.monotonic() - self._down_since
        self._down_since = None
        self._log.info("%s reachable again after %.1f s", self.what, lasted)
        return True


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
