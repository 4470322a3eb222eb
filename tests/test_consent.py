"""The consent ledger: record, show, revoke, forget, wording versions, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from livingphoto.errors import UsageError
from moderation import consent as consent_module
from moderation.consent import (
    CONSENT_VERSION,
    CONSENT_WORDING,
    ConsentLedger,
    ConsentScope,
)
from moderation.requester import Requester
from moderation.store import Store

ALICE = Requester("telegram", "1001", "-500")
BOB = Requester("discord", "2002", "guild-9")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[ConsentLedger]:
    store = Store.open(tmp_path / "moderation.sqlite3", consent_module.SCHEMA)
    yield ConsentLedger(store, clock)
    store.close()


def test_wording_lives_in_one_place_and_covers_the_three_relationships() -> None:
    assert CONSENT_VERSION
    for phrase in ("I am the person", "their permission", "parent or legal guardian"):
        assert phrase in CONSENT_WORDING


def test_no_record_means_no_consent(ledger: ConsentLedger) -> None:
    assert ledger.status(ALICE) is None
    assert not ledger.has_valid(ALICE)
    assert ledger.history(ALICE) == []


def test_record_show_and_revoke(ledger: ConsentLedger, clock: Clock) -> None:
    record = ledger.record(ALICE, CONSENT_VERSION, ConsentScope.GUARDIAN)
    assert record.valid and record.scope is ConsentScope.GUARDIAN
    assert record.recorded_at == clock.now
    assert ledger.has_valid(ALICE)
    assert not ledger.has_valid(BOB)  # per platform user

    clock.now += 60
    revocation = ledger.revoke(ALICE)
    assert revocation.records_revoked == 1
    assert revocation.at == clock.now
    assert revocation.requester == ALICE
    assert not ledger.has_valid(ALICE)
    shown = ledger.status(ALICE)
    assert shown is not None and shown.revoked_at == clock.now and not shown.active


def test_recording_twice_does_not_duplicate(ledger: ConsentLedger, clock: Clock) -> None:
    first = ledger.record(ALICE, scope="self")
    clock.now += 10
    second = ledger.record(ALICE, scope="self")
    assert second.recorded_at == first.recorded_at
    assert len(ledger.history(ALICE)) == 1
    ledger.record(ALICE, scope="permission")
    assert [r.scope for r in ledger.history(ALICE)] == [
        ConsentScope.PERMISSION,
        ConsentScope.SELF,
    ]


def test_consent_to_an_older_wording_does_not_count(ledger: ConsentLedger) -> None:
    ledger.record(ALICE, "2020-01", ConsentScope.SELF)
    record = ledger.status(ALICE)
    assert record is not None and record.active and not record.valid
    assert not ledger.has_valid(ALICE)
    ledger.record(ALICE)
    assert ledger.has_valid(ALICE)


def test_record_again_after_revoking(ledger: ConsentLedger, clock: Clock) -> None:
    ledger.record(ALICE)
    ledger.revoke(ALICE)
    clock.now += 5
    ledger.record(ALICE)
    assert ledger.has_valid(ALICE)
    assert len(ledger.history(ALICE)) == 2


def test_delete_removes_every_record(ledger: ConsentLedger) -> None:
    ledger.record(ALICE, scope="self")
    ledger.record(ALICE, scope="guardian")
    ledger.record(BOB)
    assert ledger.delete(ALICE) == 2
    assert ledger.history(ALICE) == []
    assert ledger.has_valid(BOB)


def test_records_survive_reopening(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "moderation.sqlite3"
    store = Store.open(path, consent_module.SCHEMA)
    ConsentLedger(store, clock).record(ALICE)
    store.close()
    store = Store.open(path, consent_module.SCHEMA)
    try:
        assert ConsentLedger(store, clock).has_valid(ALICE)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("requester", "version", "scope", "message"),
    [
        (ALICE, CONSENT_VERSION, "everyone", "consent scope must be one of"),
        (ALICE, "  ", "self", "wording version"),
        (ALICE, "x" * 65, "self", "wording version"),
        (Requester("telegram", ""), CONSENT_VERSION, "self", "platform and a user id"),
    ],
)
def test_bad_input_is_a_usage_error(
    ledger: ConsentLedger, requester: Requester, version: str, scope: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        ledger.record(requester, version, scope)


def test_unusable_database_path_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot open database"):
        Store.open(blocker / "moderation.sqlite3", consent_module.SCHEMA)


def test_corrupt_database_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "moderation.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UsageError, match="not usable"):
        Store.open(path, consent_module.SCHEMA)
