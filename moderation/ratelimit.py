"""Rate limits and quotas: per-user and per-chat token buckets, and a daily quota per user.

- Token buckets (in memory, per process): ``rate_user_per_min`` per platform user and
  ``rate_chat_per_min`` per chat or guild, each refilled continuously with a burst of one
  minute's worth. 0 disables a bucket.
- Daily quota (SQLite, survives restarts): ``daily_quota`` requests per platform user per UTC day.
  A request bounced only for missing consent is refunded (``refund``), so asking for consent does
  not cost the user a turn. 0 disables the quota.

Requests from the operator's own command line (platform ``cli``) are not limited. Time comes from
an injected clock (``Callable[[], float]`` returning Unix seconds), so tests never sleep.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from livingphoto.errors import RateLimited
from moderation.config import ModerationSettings
from moderation.requester import Requester
from moderation.store import Store

EXEMPT_PLATFORMS = frozenset({"cli"})
_MAX_BUCKETS = 4096  # full buckets are dropped beyond this many

SCHEMA = """
CREATE TABLE IF NOT EXISTS quota (
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (platform, user_id, day)
);
"""


class RateLimitExceeded(RateLimited):
    """``RateLimited`` naming the limit that was hit: ``user_rate``, ``chat_rate`` or ``daily_quota``."""

    def __init__(self, message: str, retry_after_s: float, rule: str) -> None:
        super().__init__(message, retry_after_s)
        self.rule = rule


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets plus the daily quota. Thread-safe."""

    def __init__(
        self, settings: ModerationSettings, store: Store, clock: Callable[[], float]
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def acquire(self, requester: Requester) -> None:
        """Take one token from each bucket and one unit of quota, or raise ``RateLimited``.

        Nothing is taken unless everything is available.
        """
        if requester.platform in EXEMPT_PLATFORMS:
            return
        now = self._clock()
        user_key = ("user", requester.platform, requester.user_id)
        chat_key = ("chat", requester.platform, requester.chat_id)
        with self._lock:
            self._check_bucket(user_key, self._settings.rate_user_per_min, now, "you")
            if requester.chat_id:
                self._check_bucket(chat_key, self._settings.rate_chat_per_min, now, "this chat")
            self._take_quota(requester, now)
            self._take(user_key, self._settings.rate_user_per_min)
            if requester.chat_id:
                self._take(chat_key, self._settings.rate_chat_per_min)
            if len(self._buckets) > _MAX_BUCKETS:
                self._prune(now)

    def refund(self, requester: Requester) -> None:
        """Give back the quota unit of a request that was refused only for missing consent."""
        if requester.platform in EXEMPT_PLATFORMS or self._settings.daily_quota == 0:
            return
        with self._store.transaction() as db:
            db.execute(
                "UPDATE quota SET used = MAX(used - 1, 0) WHERE platform=? AND user_id=? AND day=?",
                (requester.platform, requester.user_id, _day(self._clock())),
            )

    def used_today(self, requester: Requester) -> int:
        rows = self._store.query(
            "SELECT used FROM quota WHERE platform=? AND user_id=? AND day=?",
            (requester.platform, requester.user_id, _day(self._clock())),
        )
        return int(rows[0]["used"]) if rows else 0

    def forget(self, requester: Requester) -> dict[str, int]:
        """Drop the requester's bucket and quota state."""
        with self._lock:
            key = ("user", requester.platform, requester.user_id)
            buckets = 1 if self._buckets.pop(key, None) is not None else 0
        with self._store.transaction() as db:
            cursor = db.execute(
                "DELETE FROM quota WHERE platform=? AND user_id=?",
                (requester.platform, requester.user_id),
            )
        return {"rate_buckets": buckets, "quota_days": cursor.rowcount}

    def prune(self) -> int:
        """Delete quota rows older than yesterday; returns how many."""
        cutoff = _day(self._clock() - 2 * 86400)
        with self._store.transaction() as db:
            return db.execute("DELETE FROM quota WHERE day <= ?", (cutoff,)).rowcount

    def _refill(self, key: tuple[str, str, str], per_min: int, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(per_min), now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(per_min), bucket.tokens + elapsed * per_min / 60.0)
        bucket.updated = now
        return bucket

    def _check_bucket(self, key: tuple[str, str, str], per_min: int, now: float, who: str) -> None:
        if per_min == 0:
            return
        bucket = self._refill(key, per_min, now)
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) * 60.0 / per_min
            raise RateLimitExceeded(
                f"slow down: {who} can make {per_min} requests a minute; "
                f"try again in {math.ceil(wait)} s",
                retry_after_s=wait,
                rule=f"{key[0]}_rate",
            )

    def _take(self, key: tuple[str, str, str], per_min: int) -> None:
        if per_min:
            self._buckets[key].tokens -= 1.0

    def _take_quota(self, requester: Requester, now: float) -> None:
        limit = self._settings.daily_quota
        if limit == 0:
            return
        day = _day(now)
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT used FROM quota WHERE platform=? AND user_id=? AND day=?",
                (requester.platform, requester.user_id, day),
            ).fetchone()
            used = int(row["used"]) if row is not None else 0
            if used >= limit:
                wait = _seconds_to_midnight(now)
                hours, minutes = divmod(math.ceil(wait / 60), 60)
                raise RateLimitExceeded(
                    f"daily limit of {limit} requests reached; it resets at 00:00 UTC "
                    f"(in {hours} h {minutes} min)",
                    retry_after_s=wait,
                    rule="daily_quota",
                )
            db.execute(
                "INSERT INTO quota (platform, user_id, day, used) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (platform, user_id, day) DO UPDATE SET used = used + 1",
                (requester.platform, requester.user_id, day),
            )

    def _prune(self, now: float) -> None:
        per_min = {
            "user": self._settings.rate_user_per_min,
            "chat": self._settings.rate_chat_per_min,
        }
        for key in list(self._buckets):
            limit = per_min[key[0]]
            if self._refill(key, limit, now).tokens >= limit:
                del self._buckets[key]


def _day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def _seconds_to_midnight(now: float) -> float:
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1.0, (midnight - moment).total_seconds())
