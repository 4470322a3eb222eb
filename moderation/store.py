"""One SQLite database shared safely by the threads of one process.

The service runs jobs in a thread pool, so a ``Store`` holds one connection opened with
``check_same_thread=False`` and serialises every use of it with a lock. Databases are in WAL mode
so that ``livingphoto audit`` can read while the service writes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from livingphoto.errors import UsageError

Params = Sequence[Any]


class Store:
    """A locked SQLite connection. Create with ``Store.open``; close with ``close``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._connection = connection
        self._lock = threading.Lock()
        self.path = path

    @classmethod
    def open(cls, path: Path, schema: str) -> Store:
        """Open (creating if needed) the database at ``path`` and apply ``schema``."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
        except (OSError, sqlite3.Error) as error:
            raise UsageError(f"cannot open database {path}: {error}") from None
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(schema)
        except sqlite3.Error as error:
            connection.close()
            raise UsageError(f"database {path} is not usable: {error}") from None
        return cls(connection, path)

    @classmethod
    def open_readonly(cls, path: Path) -> Store:
        """Open an existing database for reading only (the operator's audit command)."""
        try:
            connection = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
            connection.row_factory = sqlite3.Row
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
        except sqlite3.Error as error:
            raise UsageError(f"cannot read database {path}: {error}") from None
        return cls(connection, path)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock for a group of statements that commit (or roll back) together."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._connection.close()
