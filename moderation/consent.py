"""The consent ledger: who attested, when, to which wording, for which relationship.

A photo showing a person is animated only after the requester attests that they are the person
pictured, or have that person's permission, or (for a child) are the parent or guardian. The
wording they agreed to lives here, in ``CONSENT_WORDING`` (the bots show it verbatim) with its
``CONSENT_VERSION``; a record made under an older wording no longer counts, so changing the
wording means bumping the version and asking again.

The bots show the wording translated (``bot/locale``); each record keeps the ``language`` the
person read it in (an ISO 639-1 code, "en" for the CLI and for records made before languages
were recorded). Validity depends on the wording version only: consent given in Spanish stays
valid when the person switches the bot to German.

Records are kept per platform user in the ``consent`` table of ``moderation.sqlite3`` (opened by
``moderation.gate.Moderator``). ``revoke`` keeps the records, marked revoked, and returns a
``Revocation``; ``delete`` (used by ``Moderator.forget``) removes them.

Media are owned by the service, not by this module. After ``revoke`` or ``Moderator.forget`` the
*caller* deletes every stored photo and clip of that requester (the service's
``DELETE /v1/users/{platform}/{user_id}``), then reports the count with
``Moderator.record_deletion`` so that the audit log keeps what was deleted.
"""

from __future__ import annotations

import enum
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from livingphoto.errors import UsageError
from moderation.requester import Requester
from moderation.store import Store

CONSENT_VERSION = "2026-11"
DEFAULT_LANGUAGE = "en"
_LANGUAGE = re.compile(r"[a-z]{2,3}")
CONSENT_WORDING = (
    "Before a photo of a person is animated, please confirm: I am the person in this photo, or "
    "I have their permission to animate it, and if the person is a child I am their parent or "
    "legal guardian. I understand the clip is synthetic, is labelled as AI-generated, and must "
    "not be used to deceive anyone. My photos and clips are deleted within a day, or at once "
    "when I ask (/forget), and I can withdraw this consent at any time."
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS consent (
    id INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    wording_version TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    revoked_at REAL,
    language TEXT NOT NULL DEFAULT 'en'
);
CREATE INDEX IF NOT EXISTS consent_user ON consent (platform, user_id);
"""


class ConsentScope(enum.StrEnum):
    """The requester's relationship to the person pictured."""

    SELF = "self"  # I am the person in the photo
    PERMISSION = "permission"  # I have the pictured person's permission
    GUARDIAN = "guardian"  # I am the parent or guardian of the child pictured
    ATTESTED = "attested"  # the combined statement of CONSENT_WORDING (CLI --consent, service)

    @classmethod
    def parse(cls, value: str) -> ConsentScope:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise UsageError(f"consent scope must be one of {choices}, got {value!r}") from None


@dataclass(frozen=True)
class ConsentRecord:
    requester: Requester
    scope: ConsentScope
    wording_version: str
    recorded_at: float  # Unix time
    revoked_at: float | None = None
    language: str = DEFAULT_LANGUAGE  # the language of the wording the person confirmed

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def valid(self) -> bool:
        """Active and given to the current wording."""
        return self.active and self.wording_version == CONSENT_VERSION


@dataclass(frozen=True)
class Revocation:
    """The result of ``ConsentLedger.revoke``: the caller now deletes the requester's media."""

    requester: Requester
    records_revoked: int
    at: float


class ConsentLedger:
    """Consent records of platform users. Thread-safe (every call goes through the ``Store``)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        _add_language_column(store)

    def record(
        self,
        requester: Requester,
        wording_version: str = CONSENT_VERSION,
        scope: ConsentScope | str = ConsentScope.ATTESTED,
        language: str = DEFAULT_LANGUAGE,
    ) -> ConsentRecord:
        """Record an attestation to ``wording_version`` read in ``language`` (ISO 639-1, e.g.
        "es"); an identical active one is returned instead of duplicated. Raises
        ``UsageError`` for a bad version, scope or language."""
        _check_requester(requester)
        scope = scope if isinstance(scope, ConsentScope) else ConsentScope.parse(scope)
        version = wording_version.strip()
        if not version or len(version) > 64:
            raise UsageError("consent wording version must be 1 to 64 characters")
        language = language.strip().lower()
        if _LANGUAGE.fullmatch(language) is None:
            raise UsageError(f"consent language must be a 2-3 letter code, got {language!r}")
        with self._store.transaction() as db:
            row = db.execute(
                "SELECT recorded_at FROM consent WHERE platform=? AND user_id=? AND scope=? "
                "AND wording_version=? AND language=? AND revoked_at IS NULL "
                "ORDER BY id DESC LIMIT 1",
                (requester.platform, requester.user_id, scope.value, version, language),
            ).fetchone()
            if row is not None:
                recorded = float(row["recorded_at"])
                return ConsentRecord(requester, scope, version, recorded, language=language)
            now = self._clock()
            db.execute(
                "INSERT INTO consent (platform, user_id, scope, wording_version, recorded_at, "
                "language) VALUES (?, ?, ?, ?, ?, ?)",
                (requester.platform, requester.user_id, scope.value, version, now, language),
            )
        return ConsentRecord(requester, scope, version, now, language=language)

    def history(self, requester: Requester) -> list[ConsentRecord]:
        """Every record of ``requester``, newest first (what ``/consent show`` displays)."""
        rows = self._store.query(
            "SELECT scope, wording_version, recorded_at, revoked_at, language FROM consent "
            "WHERE platform=? AND user_id=? ORDER BY recorded_at DESC, id DESC",
            (requester.platform, requester.user_id),
        )
        return [_record(requester, row) for row in rows]

    def status(self, requester: Requester) -> ConsentRecord | None:
        """The newest valid record, else the newest record of any kind, else ``None``."""
        records = self.history(requester)
        valid = [r for r in records if r.valid]
        if valid:
            return valid[0]
        return records[0] if records else None

    def has_valid(self, requester: Requester) -> bool:
        record = self.status(requester)
        return record is not None and record.valid

    def revoke(self, requester: Requester) -> Revocation:
        """Withdraw consent. The caller must then delete the requester's stored media."""
        now = self._clock()
        with self._store.transaction() as db:
            cursor = db.execute(
                "UPDATE consent SET revoked_at=? WHERE platform=? AND user_id=? "
                "AND revoked_at IS NULL",
                (now, requester.platform, requester.user_id),
            )
        return Revocation(requester, cursor.rowcount, now)

    def delete(self, requester: Requester) -> int:
        """Remove every record of ``requester`` (``forget``); returns how many."""
        with self._store.transaction() as db:
            cursor = db.execute(
                "DELETE FROM consent WHERE platform=? AND user_id=?",
                (requester.platform, requester.user_id),
            )
        return cursor.rowcount


def _record(requester: Requester, row: sqlite3.Row) -> ConsentRecord:
    revoked = row["revoked_at"]
    return ConsentRecord(
        requester,
        ConsentScope(row["scope"]),
        str(row["wording_version"]),
        float(row["recorded_at"]),
        None if revoked is None else float(revoked),
        str(row["language"]),
    )


def _add_language_column(store: Store) -> None:
    """Ledgers made before languages were recorded gain the column (their records: English)."""
    with store.transaction() as db:
        columns = {str(row["name"]) for row in db.execute("PRAGMA table_info(consent)")}
        if "language" not in columns:
            db.execute("ALTER TABLE consent ADD COLUMN language TEXT NOT NULL DEFAULT 'en'")


def _check_requester(requester: Requester) -> None:
    if not requester.platform or not requester.user_id:
        raise UsageError("a requester needs a platform and a user id")
