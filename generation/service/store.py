"""The job store: one SQLite database (WAL) in the data directory.

It holds jobs, their variations and scores, parent/child links, idempotency keys, requesters
and timestamps (media deletions are audited by moderation, see ``generation.service.guard``). The
database is the source of truth across restarts: ``recover`` puts interrupted jobs back in line.
Only the service process opens it (workers report over the queue), from its event-loop thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.service.jobs import (
    Adjust,
    JobState,
    RenderOptions,
    RunResult,
    VariationRecord,
)
from moderation.requester import Requester

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    options TEXT NOT NULL,
    parent_id TEXT,
    parent_variation INTEGER,
    adjust TEXT,
    idempotency_key TEXT,
    input_path TEXT NOT NULL,
    dispatched INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    dispatched_at REAL,
    started_at REAL,
    finished_at REAL,
    generation_s REAL,
    moderation_s REAL NOT NULL DEFAULT 0,
    run_dir TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    media_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency
    ON jobs(platform, user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(platform, user_id);
CREATE TABLE IF NOT EXISTS variations (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    seed INTEGER NOT NULL,
    rank INTEGER NOT NULL,
    scores TEXT NOT NULL,
    combined REAL NOT NULL,
    flagged INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""

ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


@dataclass(frozen=True)
class JobRecord:
    id: str
    state: JobState
    requester: Requester
    prompt: str
    options: RenderOptions
    input_path: str
    created_at: float
    parent_id: str | None = None
    parent_variation: int | None = None
    adjust: Adjust | None = None
    idempotency_key: str | None = None
    dispatched: bool = False
    attempts: int = 0
    error: str = ""
    category: str = ""
    dispatched_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    generation_s: float | None = None
    moderation_s: float = 0.0
    run_dir: str | None = None
    warnings: tuple[str, ...] = ()
    media_deleted: bool = False


class JobStore:
    """Typed access to the jobs database. Open with ``JobStore.open(path)``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[JobStore]:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=5000")
            connection.executescript(_SCHEMA)
            yield cls(connection)
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- jobs -------------------------------------------------------------------------------

    def insert(self, job: JobRecord) -> None:
        self._db.execute(
            "INSERT INTO jobs (id, state, platform, user_id, chat_id, prompt, options, parent_id,"
            " parent_variation, adjust, idempotency_key, input_path, created_at, moderation_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.id,
                job.state.value,
                job.requester.platform,
                job.requester.user_id,
                job.requester.chat_id,
                job.prompt,
                json.dumps(job.options.to_json()),
                job.parent_id,
                job.parent_variation,
                job.adjust.value if job.adjust else None,
                job.idempotency_key,
                job.input_path,
                job.created_at,
                job.moderation_s,
            ),
        )

    def get(self, job_id: str) -> JobRecord | None:
        row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def by_idempotency_key(self, requester: Requester, key: str) -> JobRecord | None:
        row = self._db.execute(
            "SELECT * FROM jobs WHERE platform = ? AND user_id = ? AND idempotency_key = ?",
            (requester.platform, requester.user_id, key),
        ).fetchone()
        return None if row is None else _job(row)

    def variations(self, job_id: str) -> list[VariationRecord]:
        rows = self._db.execute(
            "SELECT * FROM variations WHERE job_id = ? ORDER BY idx", (job_id,)
        ).fetchall()
        return [
            VariationRecord(
                index=row["idx"],
                path=row["path"],
                seed=row["seed"],
                rank=row["rank"],
                scores=json.loads(row["scores"]),
                combined=row["combined"],
                flagged=bool(row["flagged"]),
            )
            for row in rows
        ]

    def waiting(self) -> list[JobRecord]:
        """Queued jobs not yet handed to a worker, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE state = 'queued' AND dispatched = 0 ORDER BY created_at"
        ).fetchall()
        return [_job(row) for row in rows]

    def dispatched_active(self) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE state IN (?, ?) AND dispatched = 1 ORDER BY created_at",
            ACTIVE,
        ).fetchall()
        return [_job(row) for row in rows]

    def count_waiting(self) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND dispatched = 0"
        ).fetchone()
        return int(row[0])

    def count_active(self, requester: Requester) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE platform = ? AND user_id = ? AND state IN (?, ?)",
            (requester.platform, requester.user_id, *ACTIVE),
        ).fetchone()
        return int(row[0])

    def counts_by_state(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        for row in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[JobState(row[0])] = int(row[1])
        return counts

    def user_jobs(self, requester: Requester) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE platform = ? AND user_id = ? ORDER BY created_at",
            (requester.platform, requester.user_id),
        ).fetchall()
        return [_job(row) for row in rows]

    def mark_dispatched(self, job_id: str, at: float) -> None:
        self._db.execute(
            "UPDATE jobs SET dispatched = 1, dispatched_at = ? WHERE id = ?", (at, job_id)
        )

    def mark_running(self, job_id: str, attempt: int, at: float) -> None:
        self._db.execute(
            "UPDATE jobs SET state = 'running', attempts = MAX(attempts, ?),"
            " started_at = COALESCE(started_at, ?) WHERE id = ? AND state IN (?, ?)",
            (attempt, at, job_id, *ACTIVE),
        )

    def finish(
        self, job_id: str, state: JobState, at: float, error: str = "", category: str = ""
    ) -> bool:
        """Move an active job to a final state; False if it was already final (idempotent)."""
        cursor = self._db.execute(
            "UPDATE jobs SET state = ?, error = ?, category = ?, finished_at = ?"
            " WHERE id = ? AND state IN (?, ?)",
            (state.value, error, category, at, job_id, *ACTIVE),
        )
        return cursor.rowcount == 1

    def finish_done(self, job_id: str, result: RunResult, at: float) -> bool:
        """Record a successful run exactly once; False if the job was already final."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE jobs SET state = 'done', finished_at = ?, generation_s = ?, run_dir = ?,"
                " warnings = ? WHERE id = ? AND state IN (?, ?)",
                (
                    at,
                    result.generation_s,
                    result.run_dir,
                    json.dumps(list(result.warnings)),
                    job_id,
                    *ACTIVE,
                ),
            )
            if cursor.rowcount != 1:
                return False
            db.executemany(
                "INSERT INTO variations (job_id, idx, path, seed, rank, scores, combined, flagged)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        v.index,
                        v.path,
                        v.seed,
                        v.rank,
                        json.dumps(v.scores),
                        v.combined,
                        int(v.flagged),
                    )
                    for v in result.variations
                ],
            )
        return True

    def recover(self, requeue_dispatched: bool) -> int:
        """After a restart: running jobs run again. Returns how many jobs are put back in line.

        With an in-process worker every unfinished job is waiting again; with Redis workers the
        jobs already handed over stay with them (the service follows their event streams).
        """
        if requeue_dispatched:
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'queued', dispatched = 0 WHERE state IN (?, ?)", ACTIVE
            )
        else:
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'queued' WHERE state = 'running' AND dispatched = 0"
            )
        return cursor.rowcount

    def expired(self, before: float) -> list[JobRecord]:
        """Jobs whose media is older than ``before`` (finished, or created and never started)."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE media_deleted = 0 AND state NOT IN (?, ?)"
            " AND COALESCE(finished_at, created_at) < ?",
            (*ACTIVE, before),
        ).fetchall()
        return [_job(row) for row in rows]

    def keeping_media(self) -> set[str]:
        """Ids of the jobs whose media is kept (not yet deleted by retention, revoke or refusal)."""
        rows = self._db.execute("SELECT id FROM jobs WHERE media_deleted = 0").fetchall()
        return {row[0] for row in rows}

    def add_moderation_time(self, job_id: str, seconds: float) -> None:
        self._db.execute(
            "UPDATE jobs SET moderation_s = moderation_s + ? WHERE id = ?", (seconds, job_id)
        )

    def mark_media_deleted(self, job_id: str) -> None:
        self._db.execute("UPDATE jobs SET media_deleted = 1 WHERE id = ?", (job_id,))

    def delete_jobs(self, job_ids: Sequence[str]) -> int:
        with self._transaction() as db:
            deleted = 0
            for job_id in job_ids:
                deleted += db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount
        return deleted


def _job(row: sqlite3.Row) -> JobRecord:
    data: dict[str, Any] = dict(row)
    return JobRecord(
        id=data["id"],
        state=JobState(data["state"]),
        requester=Requester(data["platform"], data["user_id"], data["chat_id"]),
        prompt=data["prompt"],
        options=RenderOptions.from_json(json.loads(data["options"])),
        input_path=data["input_path"],
        created_at=data["created_at"],
        parent_id=data["parent_id"],
        parent_variation=data["parent_variation"],
        adjust=Adjust(data["adjust"]) if data["adjust"] else None,
        idempotency_key=data["idempotency_key"],
        dispatched=bool(data["dispatched"]),
        attempts=data["attempts"],
        error=data["error"],
        category=data["category"],
        dispatched_at=data["dispatched_at"],
        started_at=data["started_at"],
        finished_at=data["finished_at"],
        generation_s=data["generation_s"],
        moderation_s=data["moderation_s"],
        run_dir=data["run_dir"],
        warnings=tuple(json.loads(data["warnings"])),
        media_deleted=bool(data["media_deleted"]),
    )
