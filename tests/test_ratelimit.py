"""Rate limits and the daily quota, driven by an injected clock (no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from livingphoto.errors import RateLimited, UsageError
from moderation import ratelimit as ratelimit_module
from moderation.config import ModerationSettings
from moderation.ratelimit import RateLimiter, RateLimitExceeded
from moderation.requester import Requester
from moderation.store import Store

# 2027-01-15 23:59:00 UTC: one minute before the daily quota resets
NEAR_MIDNIGHT = datetime(2027, 1, 15, 23, 59, tzinfo=UTC).timestamp()
ALICE = Requester("telegram", "1", "chat-a")
BOB = Requester("telegram", "2", "chat-a")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "moderation.sqlite3", ratelimit_module.SCHEMA)
    yield store
    store.close()


def limiter(store: Store, clock: Clock, **fields: int) -> RateLimiter:
    return RateLimiter(ModerationSettings(**fields), store, clock)  # type: ignore[arg-type]


def test_user_bucket_allows_a_burst_then_refills(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=3, rate_chat_per_min=0, daily_quota=0)
    for _ in range(3):
        rl.acquire(ALICE)
    with pytest.raises(RateLimited) as caught:
        rl.acquire(ALICE)
    assert isinstance(caught.value, RateLimitExceeded) and caught.value.rule == "user_rate"
    assert caught.value.retry_after_s == pytest.approx(20.0)
    assert caught.value.http_status == 429
    rl.acquire(BOB)  # another user has their own bucket
    clock.now += 19.9
    with pytest.raises(RateLimited):
        rl.acquire(ALICE)
    clock.now += 0.2
    rl.acquire(ALICE)


def test_chat_bucket_is_shared_by_the_chat(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=10, rate_chat_per_min=2, daily_quota=0)
    rl.acquire(ALICE)
    rl.acquire(BOB)
    with pytest.raises(RateLimitExceeded) as caught:
        rl.acquire(ALICE)
    assert caught.value.rule == "chat_rate"
    assert "this chat" in str(caught.value)
    rl.acquire(Requester("telegram", "1", "other-chat"))


def test_a_refused_request_takes_nothing(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=5, rate_chat_per_min=1, daily_quota=10)
    rl.acquire(ALICE)
    with pytest.raises(RateLimitExceeded):
        rl.acquire(BOB)  # the chat is empty: Bob's own bucket and quota are untouched
    assert rl.used_today(BOB) == 0


def test_daily_quota_resets_at_utc_midnight(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT)
    rl = limiter(store, clock, rate_user_per_min=0, rate_chat_per_min=0, daily_quota=2)
    rl.acquire(ALICE)
    rl.acquire(ALICE)
    with pytest.raises(RateLimitExceeded) as caught:
        rl.acquire(ALICE)
    assert caught.value.rule == "daily_quota"
    assert caught.value.retry_after_s == pytest.approx(60.0)
    assert "00:00 UTC" in str(caught.value)
    clock.now += 61
    rl.acquire(ALICE)
    assert rl.used_today(ALICE) == 1


def test_quota_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock(NEAR_MIDNIGHT - 7200)
    path = tmp_path / "moderation.sqlite3"
    first = Store.open(path, ratelimit_module.SCHEMA)
    limiter(first, clock, daily_quota=1).acquire(ALICE)
    first.close()
    second = Store.open(path, ratelimit_module.SCHEMA)
    try:
        with pytest.raises(RateLimitExceeded):
            limiter(second, clock, daily_quota=1).acquire(ALICE)
    finally:
        second.close()


def test_refund_gives_the_quota_back(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=0, daily_quota=1)
    rl.acquire(ALICE)
    rl.refund(ALICE)
    assert rl.used_today(ALICE) == 0
    rl.acquire(ALICE)


def test_cli_is_not_limited(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=1, daily_quota=1)
    for _ in range(5):
        rl.acquire(Requester("cli", "operator"))


def test_forget_and_prune(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3 * 86400)
    rl = limiter(store, clock, rate_user_per_min=1, daily_quota=5)
    rl.acquire(ALICE)
    clock.now += 3 * 86400
    rl.acquire(ALICE)
    assert rl.prune() == 1  # the day three days ago
    assert rl.forget(ALICE) == {"rate_buckets": 1, "quota_days": 1}
    rl.acquire(ALICE)  # a fresh bucket


def test_many_users_do_not_grow_memory_without_bound(store: Store) -> None:
    clock = Clock(NEAR_MIDNIGHT - 3600)
    rl = limiter(store, clock, rate_user_per_min=60, rate_chat_per_min=0, daily_quota=0)
    for i in range(5000):
        rl.acquire(Requester("discord", str(i)))
        clock.now += 1.0
    assert len(rl._buckets) <= 4097


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIVINGPHOTO_RATE_USER_PER_MIN", "-1"),
        ("LIVINGPHOTO_RATE_CHAT_PER_MIN", "many"),
        ("LIVINGPHOTO_DAILY_QUOTA", "1.5"),
    ],
)
def test_bad_settings_are_usage_errors(name: str, value: str) -> None:
    with pytest.raises(UsageError, match=name):
        ModerationSettings.from_env({name: value})


def test_settings_from_env() -> None:
    settings = ModerationSettings.from_env(
        {
            "LIVINGPHOTO_RATE_USER_PER_MIN": "2",
            "LIVINGPHOTO_RATE_CHAT_PER_MIN": "0",
            "LIVINGPHOTO_DAILY_QUOTA": "7",
        }
    )
    assert (settings.rate_user_per_min, settings.rate_chat_per_min, settings.daily_quota) == (
        2,
        0,
        7,
    )
