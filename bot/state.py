"""Persistent bot state in SQLite, so a restart loses no pending job and no update runs twice.

One database per platform (``<data_dir>/bot/<platform>.sqlite3``) holds:

- ``jobs``: every job the bot submitted, where its status message and keyboard are, its phase
  (``running`` -> ``delivered`` -> ``picked`` | ``ended``) and the end of its group vote;
- ``deliveries``: which variation was sent as which message (resume skips those);
- ``drafts``: a request waiting for the motion text, the choice of a face or consent, with its
  per-request options (only the platform's reference to the photo, never its bytes);
- ``callbacks``: short opaque button tokens -> (action, subject id, k) with an expiry;
- ``votes``: one vote per member per job; ``settings``: per-user defaults (and language);
- ``chat_settings``: a chat's (or guild channel's) default language, set by an admin;
- ``processed``: platform event ids already handled (dedup of repeated updates).

Queries are tiny and local, so they run synchronously on the event loop.

Usage::

    with BotState.open(path) as state:
        if state.claim_event("update:42"):
            ...
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Phase = Literal["running", "delivered", "picked", "ended"]
MotionLevel = Literal["subtle", "normal", "strong"]
MOTION_SCALES: Mapping[str, float] = MappingProxyType({"subtle": 0.6, "normal": 1.0, "strong": 1.4})
EVENT_MEMORY_S = 7 * 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    chat_id TEXT NOT NULL,
    chat_kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    image_name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    variations INTEGER NOT NULL,
    seconds REAL NOT NULL,
    motion_scale REAL NOT NULL,
    parent_job_id TEXT NOT NULL DEFAULT '',
    adjust TEXT NOT NULL DEFAULT '',
    status_message_id TEXT NOT NULL DEFAULT '',
    keyboard_message_id TEXT NOT NULL DEFAULT '',
    phase TEXT NOT NULL DEFAULT 'running',
    vote_deadline REAL NOT NULL DEFAULT 0,
    picked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    job_id TEXT NOT NULL,
    k INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (job_id, k)
);
CREATE INDEX IF NOT EXISTS deliveries_by_message ON deliveries (message_id);
CREATE TABLE IF NOT EXISTS drafts (
    draft_id TEXT PRIMARY KEY,
    chat_id TEXT NOT NULL,
    chat_kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    image_ref TEXT NOT NULL,
    image_name TEXT NOT NULL,
    prompt TEXT NOT NULL,
    waiting TEXT NOT NULL,
    created_at REAL NOT NULL,
    variations INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS callbacks (
    token TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    k INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    job_id TEXT NOT NULL,
    voter_id TEXT NOT NULL,
    k INTEGER NOT NULL,
    PRIMARY KEY (job_id, voter_id)
);
CREATE TABLE IF NOT EXISTS settings (
    user_id TEXT PRIMARY KEY,
    variations INTEGER NOT NULL,
    seconds REAL NOT NULL,
    motion TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chat_settings (
    chat_id TEXT PRIMARY KEY,
    language TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS processed (
    event_id TEXT PRIMARY KEY,
    at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class UserSettings:
    variations: int = 3
    seconds: float = 3.0
    motion: MotionLevel = "normal"
    language: str = ""  # the user's own choice (/settings language es); "" = from the platform

    @property
    def motion_scale(self) -> float:
        return MOTION_SCALES[self.motion]


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    chat_id: str
    chat_kind: str
    user_id: str
    reply_to: str
    image_ref: str
    image_name: str
    prompt: str
    variations: int
    seconds: float
    motion_scale: float
    parent_job_id: str = ""
    adjust: str = ""
    status_message_id: str = ""
    keyboard_message_id: str = ""
    phase: Phase = "running"
    vote_deadline: float = 0.0
    picked: int = 0
    created_at: float = 0.0
    language: str = ""  # the requester's language when the job was submitted


@dataclass(frozen=True)
class Draft:
    draft_id: str
    chat_id: str
    chat_kind: str
    user_id: str
    reply_to: str
    image_ref: str
    image_name: str
    prompt: str
    waiting: Literal["motion", "consent", "face"]
    created_at: float
    variations: int = 0  # the request's own option; 0: the user's default when submitted
    seconds: float = 0.0  # likewise; 0: the user's default
    language: str = ""  # the requester's language when the request came
    face: int = -1  # the chosen face (0-based, left to right); -1: not chosen (the service's)
    faces: int = 0  # how many faces the photo showed when the bot asked which one


@dataclass(frozen=True)
class Callback:
    token: str
    action: str
    subject: str  # a job id or a draft id
    k: int
    expires_at: float


class BotState:
    """All reads and writes of the bot's SQLite database."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[BotState]:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(_SCHEMA)
            _add_missing_columns(connection)
            state = cls(connection)
            state.prune(time.time())
            yield state
        finally:
            connection.close()

    def prune(self, now: float) -> None:
        """Forget expired buttons, old event ids and abandoned drafts."""
        self._db.execute("DELETE FROM callbacks WHERE expires_at < ?", (now,))
        self._db.execute("DELETE FROM processed WHERE at < ?", (now - EVENT_MEMORY_S,))
        self._db.execute("DELETE FROM drafts WHERE created_at < ?", (now - EVENT_MEMORY_S,))

    # -- dedup -------------------------------------------------------------------------------
    def claim_event(self, event_id: str) -> bool:
        """True the first time ``event_id`` is seen, False on every repeat."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO processed (event_id, at) VALUES (?, ?)", (event_id, time.time())
        )
        return cursor.rowcount == 1

    # -- jobs --------------------------------------------------------------------------------
    def add_job(self, job: JobRecord) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO jobs (job_id, chat_id, chat_kind, user_id, reply_to, image_ref,"
            " image_name, prompt, variations, seconds, motion_scale, parent_job_id, adjust,"
            " status_message_id, keyboard_message_id, phase, vote_deadline, picked, created_at,"
            " language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.job_id,
                job.chat_id,
                job.chat_kind,
                job.user_id,
                job.reply_to,
                job.image_ref,
                job.image_name,
                job.prompt,
                job.variations,
                job.seconds,
                job.motion_scale,
                job.parent_job_id,
                job.adjust,
                job.status_message_id,
                job.keyboard_message_id,
                job.phase,
                job.vote_deadline,
                job.picked,
                job.created_at or time.time(),
                job.language,
            ),
        )

    def job(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def jobs_in_phase(self, *phases: Phase) -> list[JobRecord]:
        marks = ", ".join("?" for _ in phases)
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE phase IN ({marks}) ORDER BY created_at", phases
        ).fetchall()
        return [_job(row) for row in rows]

    def set_status_message(self, job_id: str, message_id: str) -> None:
        self._db.execute(
            "UPDATE jobs SET status_message_id = ? WHERE job_id = ?", (message_id, job_id)
        )

    def set_delivered(self, job_id: str, keyboard_message_id: str, vote_deadline: float) -> None:
        self._db.execute(
            "UPDATE jobs SET phase = 'delivered', keyboard_message_id = ?, vote_deadline = ?"
            " WHERE job_id = ? AND phase = 'running'",
            (keyboard_message_id, vote_deadline, job_id),
        )

    def set_ended(self, job_id: str) -> None:
        self._db.execute("UPDATE jobs SET phase = 'ended' WHERE job_id = ?", (job_id,))

    def claim_pick(self, job_id: str, k: int) -> bool:
        """Move a delivered job to ``picked`` once; False if it was already picked or ended."""
        cursor = self._db.execute(
            "UPDATE jobs SET phase = 'picked', picked = ? WHERE job_id = ? AND phase = 'delivered'",
            (k, job_id),
        )
        return cursor.rowcount == 1

    def user_jobs(self, user_id: str) -> list[JobRecord]:
        rows = self._db.execute("SELECT * FROM jobs WHERE user_id = ?", (user_id,)).fetchall()
        return [_job(row) for row in rows]

    # -- deliveries --------------------------------------------------------------------------
    def add_delivery(self, job_id: str, k: int, message_id: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO deliveries (job_id, k, message_id) VALUES (?, ?, ?)",
            (job_id, k, message_id),
        )

    def deliveries(self, job_id: str) -> dict[int, str]:
        rows = self._db.execute(
            "SELECT k, message_id FROM deliveries WHERE job_id = ? ORDER BY k", (job_id,)
        ).fetchall()
        return {int(row["k"]): str(row["message_id"]) for row in rows}

    def jobs_by_message(self, chat_id: str, message_id: str) -> list[tuple[JobRecord, int]]:
        """The (job, variation) pairs delivered as ``message_id`` in ``chat_id``."""
        rows = self._db.execute(
            "SELECT jobs.*, deliveries.k AS delivered_k FROM deliveries JOIN jobs USING (job_id)"
            " WHERE deliveries.message_id = ? AND jobs.chat_id = ? ORDER BY deliveries.k",
            (message_id, chat_id),
        ).fetchall()
        return [(_job(row), int(row["delivered_k"])) for row in rows]

    # -- drafts ------------------------------------------------------------------------------
    def add_draft(self, draft: Draft) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO drafts (draft_id, chat_id, chat_kind, user_id, reply_to,"
            " image_ref, image_name, prompt, waiting, created_at, variations, seconds, language,"
            " face, faces) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                draft.draft_id,
                draft.chat_id,
                draft.chat_kind,
                draft.user_id,
                draft.reply_to,
                draft.image_ref,
                draft.image_name,
                draft.prompt,
                draft.waiting,
                draft.created_at,
                draft.variations,
                draft.seconds,
                draft.language,
                draft.face,
                draft.faces,
            ),
        )

    def draft(self, draft_id: str) -> Draft | None:
        row = self._db.execute("SELECT * FROM drafts WHERE draft_id = ?", (draft_id,)).fetchone()
        return _draft(row) if row is not None else None

    def waiting_for_motion(self, chat_id: str, user_id: str, since: float) -> Draft | None:
        row = self._db.execute(
            "SELECT * FROM drafts WHERE chat_id = ? AND user_id = ? AND waiting = 'motion'"
            " AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
            (chat_id, user_id, since),
        ).fetchone()
        return _draft(row) if row is not None else None

    def take_draft(self, draft_id: str) -> Draft | None:
        """Remove and return a draft; None if another event already took it."""
        draft = self.draft(draft_id)
        if draft is None:
            return None
        cursor = self._db.execute("DELETE FROM drafts WHERE draft_id = ?", (draft_id,))
        return draft if cursor.rowcount == 1 else None

    def drop_motion_drafts(self, chat_id: str, user_id: str) -> None:
        self._db.execute(
            "DELETE FROM drafts WHERE chat_id = ? AND user_id = ? AND waiting = 'motion'",
            (chat_id, user_id),
        )

    # -- callbacks ---------------------------------------------------------------------------
    def new_callback(self, action: str, subject: str, k: int, ttl_s: float) -> str:
        token = new_id()
        self._db.execute(
            "INSERT INTO callbacks (token, action, subject, k, expires_at) VALUES (?, ?, ?, ?, ?)",
            (token, action, subject, k, time.time() + ttl_s),
        )
        return token

    def callback(self, token: str, now: float) -> Callback | None:
        """The live callback for ``token``; None when unknown (forged) or expired."""
        row = self._db.execute(
            "SELECT * FROM callbacks WHERE token = ? AND expires_at >= ?", (token, now)
        ).fetchone()
        if row is None:
            return None
        return Callback(
            token=str(row["token"]),
            action=str(row["action"]),
            subject=str(row["subject"]),
            k=int(row["k"]),
            expires_at=float(row["expires_at"]),
        )

    def drop_callbacks(self, subject: str) -> None:
        self._db.execute("DELETE FROM callbacks WHERE subject = ?", (subject,))

    # -- votes -------------------------------------------------------------------------------
    def set_vote(self, job_id: str, voter_id: str, k: int | None) -> None:
        if k is None:
            self._db.execute(
                "DELETE FROM votes WHERE job_id = ? AND voter_id = ?", (job_id, voter_id)
            )
            return
        self._db.execute(
            "INSERT OR REPLACE INTO votes (job_id, voter_id, k) VALUES (?, ?, ?)",
            (job_id, voter_id, k),
        )

    def tally(self, job_id: str) -> dict[int, int]:
        rows = self._db.execute(
            "SELECT k, COUNT(*) AS n FROM votes WHERE job_id = ? GROUP BY k", (job_id,)
        ).fetchall()
        return {int(row["k"]): int(row["n"]) for row in rows}

    # -- settings ----------------------------------------------------------------------------
    def user_settings(self, user_id: str, default: UserSettings) -> UserSettings:
        row = self._db.execute("SELECT * FROM settings WHERE user_id = ?", (user_id,)).fetchone()
        if row is None:
            return default
        motion = str(row["motion"])
        return UserSettings(
            variations=int(row["variations"]),
            seconds=float(row["seconds"]),
            motion="subtle" if motion == "subtle" else "strong" if motion == "strong" else "normal",
            language=str(row["language"]),
        )

    def save_settings(self, user_id: str, settings: UserSettings) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO settings (user_id, variations, seconds, motion, language)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, settings.variations, settings.seconds, settings.motion, settings.language),
        )

    def chat_language(self, chat_id: str) -> str:
        """The chat's default language set by an admin; "" when none was set."""
        row = self._db.execute(
            "SELECT language FROM chat_settings WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        return str(row["language"]) if row is not None else ""

    def set_chat_language(self, chat_id: str, language: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO chat_settings (chat_id, language) VALUES (?, ?)",
            (chat_id, language),
        )

    # -- forget ------------------------------------------------------------------------------
    def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete everything the bot keeps about ``user_id``; returns counts per kind."""
        jobs = [
            row["job_id"]
            for row in self._db.execute("SELECT job_id FROM jobs WHERE user_id = ?", (user_id,))
        ]
        for job_id in jobs:
            self._db.execute("DELETE FROM deliveries WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM votes WHERE job_id = ?", (job_id,))
            self._db.execute("DELETE FROM callbacks WHERE subject = ?", (job_id,))
        self._db.execute("DELETE FROM jobs WHERE user_id = ?", (user_id,))
        drafts = [
            row["draft_id"]
            for row in self._db.execute("SELECT draft_id FROM drafts WHERE user_id = ?", (user_id,))
        ]
        for draft_id in drafts:
            self._db.execute("DELETE FROM callbacks WHERE subject = ?", (draft_id,))
        self._db.execute("DELETE FROM drafts WHERE user_id = ?", (user_id,))
        votes = self._db.execute("DELETE FROM votes WHERE voter_id = ?", (user_id,)).rowcount
        settings = self._db.execute("DELETE FROM settings WHERE user_id = ?", (user_id,)).rowcount
        return {
            "requests": len(jobs) + len(drafts),
            "votes": votes,
            "settings": settings,
        }


# Columns added after the first release: (table, column, declaration) for databases made earlier.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("drafts", "variations", "INTEGER NOT NULL DEFAULT 0"),
    ("drafts", "seconds", "REAL NOT NULL DEFAULT 0"),
    ("drafts", "language", "TEXT NOT NULL DEFAULT ''"),
    ("drafts", "face", "INTEGER NOT NULL DEFAULT -1"),
    ("drafts", "faces", "INTEGER NOT NULL DEFAULT 0"),
    ("jobs", "language", "TEXT NOT NULL DEFAULT ''"),
    ("settings", "language", "TEXT NOT NULL DEFAULT ''"),
)


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, column, declaration in _ADDED_COLUMNS:
        present = {str(row["name"]) for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def new_id() -> str:
    """A short unguessable id (12 URL-safe characters) for buttons and drafts."""
    return secrets.token_urlsafe(9)


def _job(row: sqlite3.Row) -> JobRecord:
    phase = str(row["phase"])
    return JobRecord(
        job_id=str(row["job_id"]),
        chat_id=str(row["chat_id"]),
        chat_kind=str(row["chat_kind"]),
        user_id=str(row["user_id"]),
        reply_to=str(row["reply_to"]),
        image_ref=str(row["image_ref"]),
        image_name=str(row["image_name"]),
        prompt=str(row["prompt"]),
        variations=int(row["variations"]),
        seconds=float(row["seconds"]),
        motion_scale=float(row["motion_scale"]),
        parent_job_id=str(row["parent_job_id"]),
        adjust=str(row["adjust"]),
        status_message_id=str(row["status_message_id"]),
        keyboard_message_id=str(row["keyboard_message_id"]),
        phase=_phase(phase),
        vote_deadline=float(row["vote_deadline"]),
        picked=int(row["picked"]),
        created_at=float(row["created_at"]),
        language=str(row["language"]),
    )


def _phase(value: str) -> Phase:
    if value == "delivered":
        return "delivered"
    if value == "picked":
        return "picked"
    if value == "ended":
        return "ended"
    return "running"


def _draft(row: sqlite3.Row) -> Draft:
    return Draft(
        draft_id=str(row["draft_id"]),
        chat_id=str(row["chat_id"]),
        chat_kind=str(row["chat_kind"]),
        user_id=str(row["user_id"]),
        reply_to=str(row["reply_to"]),
        image_ref=str(row["image_ref"]),
        image_name=str(row["image_name"]),
        prompt=str(row["prompt"]),
        waiting=_waiting(str(row["waiting"])),
        created_at=float(row["created_at"]),
        variations=int(row["variations"]),
        seconds=float(row["seconds"]),
        language=str(row["language"]),
        face=int(row["face"]),
        faces=int(row["faces"]),
    )


def _waiting(value: str) -> Literal["motion", "consent", "face"]:
    if value == "consent":
        return "consent"
    if value == "face":
        return "face"
    return "motion"
