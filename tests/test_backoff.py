"""Back-off delays and outage bookkeeping used while Redis does not answer."""

from __future__ import annotations

import logging
import random

import pytest

from generation.service.backoff import Backoff, Outage


def test_backoff_doubles_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.1, 2.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(12)]
    for n, delay in enumerate(delays):
        ceiling = min(2.0, 0.1 * 2**n)
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 2.0 and delays[-1] >= 1.0  # capped, and stays near the cap
    assert len({round(d, 6) for d in delays[6:]}) > 1  # jittered: workers do not retry in step
    backoff.reset()
    assert backoff.next_delay() <= 0.1


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_backoff_rejects_bad_bounds(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base_s"):
        Backoff(base, cap)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("test.outage")
    outage = Outage("Redis", log)
    assert outage.up and outage.down_for_s == 0.0
    with caplog.at_level(logging.INFO, logger="test.outage"):
        assert outage.ok() is False
        assert outage.failed(ConnectionError("refused\nmore")) is True
        for _ in range(50):
            assert outage.failed(ConnectionError("refused")) is False
        assert not outage.up and outage.down_for_s >= 0.0
        assert outage.ok() is True
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0] == "Redis unreachable (ConnectionError: refused); retrying with back-off"
    assert messages[1].startswith("Redis reachable again after")
    assert outage.outages == 1 and outage.up
