"""The audit log: every moderation decision and every deletion, never an image.

Stored in ``audit.sqlite3`` in the data directory (separate from the consent ledger, so that
forgetting a user never deletes the record of what was decided or deleted).

What is kept, deliberately:

- every decision: time, platform, user id, chat id, stage (``request`` or ``frames``), outcome
  (``allowed`` / ``refused``), category and rule, and a salted 16-hex-digit HMAC of the prompt (it
  lets an operator see repeats without storing the text; the salt is random per data directory);
- for *refusals only*, a short redacted excerpt of the prompt (invisible characters removed) (at most
  ``audit_excerpt_chars``, 0 = none; links, e-mail addresses, @handles and long numbers masked),
  so operators can review false refusals and tune ``policy.toml``; for NSFW refusals the score;
- never the image, never the text of an allowed prompt.

``forget`` (``Moderator.forget``) anonymises a user's decisions: the user and chat ids become a
pseudonym (``~`` + salted HMAC of platform and user id) and the excerpt is dropped, while the
category, rule and time stay. Every deletion (forget, revoke, retention sweeps of the service) is
recorded in ``deletions`` with that pseudonym and the counts of what was deleted. Decisions older
than ``audit_retention_days`` are pruned when the log is opened.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from moderation.normalize import clean
from moderation.requester import Requester
from moderation.store import Store

AUDIT_DB = "audit.sqlite3"

Outcome = Literal["allowed", "refused"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    outcome TEXT NOT NULL,
    category TEXT NOT NULL,
    rule TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    excerpt TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_outcome ON decisions (outcome, at);
CREATE INDEX IF NOT EXISTS decisions_user ON decisions (platform, user_id);
CREATE TABLE IF NOT EXISTS deletions (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    platform TEXT NOT NULL,
    subject TEXT NOT NULL,
    reason TEXT NOT NULL,
    counts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_URL = re.compile(r"\b(?:https?|www)\S*|\S+\.(?:com|org|net|io|ru|de|me)\S*")
_EMAIL = re.compile(r"\S+@\S+")
_HANDLE = re.compile(r"(?<!\S)@\S+")
_NUMBER = re.compile(r"\d{3,}")


@dataclass(frozen=True)
class AuditEntry:
    at: float
    platform: str
    user_id: str
    chat_id: str
    stage: str
    outcome: str
    category: str
    rule: str
    excerpt: str
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "platform": self.platform,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "stage": self.stage,
            "outcome": self.outcome,
            "category": self.category,
            "rule": self.rule,
            "excerpt": self.excerpt,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DeletionEntry:
    at: float
    platform: str
    subject: str
    reason: str
    counts: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return {
            "at": self.at,
            "platform": self.platform,
            "subject": self.subject,
            "reason": self.reason,
            "counts": self.counts,
        }


class AuditLog:
    """Writes and reads the audit database. Thread-safe (through its ``Store``)."""

    def __init__(self, store: Store, clock: Callable[[], float], excerpt_chars: int = 80) -> None:
        self._store = store
        self._clock = clock
        self._excerpt_chars = excerpt_chars
        self._salt = self._load_salt()

    @classmethod
    def open_readonly(cls, data_dir: Path) -> AuditLog:
        """For the operator's ``livingphoto audit`` command: reading only."""
        return cls(Store.open_readonly(data_dir / AUDIT_DB), clock=lambda: 0.0)

    def close(self) -> None:
        self._store.close()

    # -- writing ---------------------------------------------------------------------------

    def record(
        self,
        requester: Requester,
        outcome: Outcome,
        *,
        stage: str = "request",
        category: str = "",
        rule: str = "",
        prompt: str = "",
        detail: str = "",
    ) -> None:
        """Write one decision (see the module docstring for what is kept)."""
        excerpt = self._excerpt(prompt) if outcome == "refused" else None
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO decisions (at, platform, user_id, chat_id, stage, outcome, "
                "category, rule, prompt_hash, excerpt, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._clock(),
                    requester.platform,
                    requester.user_id,
                    requester.chat_id,
                    stage,
                    outcome,
                    category,
                    rule,
                    self._digest(prompt) if prompt else "",
                    excerpt,
                    detail,
                ),
            )

    def record_deletion(
        self, platform: str, subject: str, reason: str, counts: Mapping[str, int]
    ) -> None:
        """Record that data was deleted (``subject`` is a pseudonym or ``*`` for a sweep)."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO deletions (at, platform, subject, reason, counts) "
                "VALUES (?, ?, ?, ?, ?)",
                (self._clock(), platform, subject, reason, json.dumps(dict(counts))),
            )

    def anonymise(self, requester: Requester) -> int:
        """Replace the requester's ids by their pseudonym and drop excerpts; returns rows."""
        alias = self.pseudonym(requester)
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE decisions SET user_id=?, chat_id='', excerpt=NULL "
                "WHERE platform=? AND user_id=?",
                (alias, requester.platform, requester.user_id),
            )
        return cursor.rowcount

    def prune(self, retention_days: int) -> int:
        """Delete decisions older than ``retention_days`` (0 keeps all); returns how many."""
        if retention_days == 0:
            return 0
        cutoff = self._clock() - retention_days * 86400.0
        with self._store.transaction() as db:
            return db.execute("DELETE FROM decisions WHERE at < ?", (cutoff,)).rowcount

    def pseudonym(self, requester: Requester) -> str:
        return "~" + self._digest(f"{requester.platform}\x00{requester.user_id}")

    # -- reading ---------------------------------------------------------------------------

    def recent(self, limit: int = 20, outcome: Outcome | None = None) -> list[AuditEntry]:
        """The newest decisions first, optionally only ``allowed`` or ``refused`` ones."""
        where, params = ("WHERE outcome=?", [outcome]) if outcome else ("", [])
        rows = self._store.query(
            "SELECT at, platform, user_id, chat_id, stage, outcome, category, rule, excerpt, "
            f"detail FROM decisions {where} ORDER BY at DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [_entry(row) for row in rows]

    def refusals(self, limit: int = 20) -> list[AuditEntry]:
        return self.recent(limit, "refused")

    def deletions(self, limit: int = 20) -> list[DeletionEntry]:
        rows = self._store.query(
            "SELECT at, platform, subject, reason, counts FROM deletions "
            "ORDER BY at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeletionEntry(
                float(r["at"]),
                str(r["platform"]),
                str(r["subject"]),
                str(r["reason"]),
                {str(k): int(v) for k, v in json.loads(r["counts"]).items()},
            )
            for r in rows
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _load_salt(self) -> bytes:
        try:
            rows = self._store.query("SELECT value FROM meta WHERE key='salt'")
        except sqlite3.Error:
            rows = []  # a read-only log written by an older version: nothing to hash
        if rows:
            return bytes.fromhex(str(rows[0]["value"]))
        salt = secrets.token_bytes(16)
        try:
            with self._store.transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('salt', ?)", (salt.hex(),)
                )
                row = db.execute("SELECT value FROM meta WHERE key='salt'").fetchone()
        except sqlite3.Error:
            return salt  # read-only: the salt is only needed for writing
        return bytes.fromhex(str(row["value"]))

    def _digest(self, text: str) -> str:
        return hmac.new(self._salt, text.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[
            :16
        ]

    def _excerpt(self, prompt: str) -> str | None:
        if self._excerpt_chars == 0 or not prompt:
            return None
        text = " ".join(clean(prompt).split())
        text = _URL.sub("[link]", _EMAIL.sub("[email]", _HANDLE.sub("[user]", text)))
        text = _NUMBER.sub("[n]", text)
        if len(text) > self._excerpt_chars:
            text = text[: self._excerpt_chars - 1].rstrip() + "…"
        return text


def _entry(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        at=float(row["at"]),
        platform=str(row["platform"]),
        user_id=str(row["user_id"]),
        chat_id=str(row["chat_id"]),
        stage=str(row["stage"]),
        outcome=str(row["outcome"]),
        category=str(row["category"]),
        rule=str(row["rule"]),
        excerpt=str(row["excerpt"] or ""),
        detail=str(row["detail"]),
    )
