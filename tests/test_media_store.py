"""The media store removes a job's files, counting them, even while something else removes them
too (consent revoked while the job's worker cleans up a cancelled attempt)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.service.media import MediaStore, Removed

JOB = "7246cabc8d5e5aad9503b0213cf004e3"


def _job_with_a_run(store: MediaStore) -> Path:
    run = store.job_dir(JOB) / "run-1e5eccfc195b"
    run.mkdir(parents=True)
    (store.job_dir(JOB) / "input.png").write_bytes(b"p" * 10)
    (run / "variation-1.mp4").write_bytes(b"v" * 100)
    (run / "contact-sheet.png").write_bytes(b"s" * 30)
    return run


def test_deleting_a_run_counts_its_files_and_a_missing_one_is_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    run = _job_with_a_run(store)
    assert store.delete_run(run) == Removed(2, 130)
    assert not run.exists()
    assert store.delete_run(run) == Removed(0, 0)
    assert store.delete_job(JOB) == Removed(1, 10)
    assert store.delete_job(JOB) == Removed(0, 0)


def test_a_run_removed_by_someone_else_meanwhile_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MediaStore(tmp_path)
    run = _job_with_a_run(store)
    real_rglob = Path.rglob

    def vanishing(self: Path, pattern: str) -> Iterator[Path]:
        found = real_rglob(self, pattern)
        shutil.rmtree(store.job_dir(JOB))  # the service forgets the job at this very moment
        return found

    monkeypatch.setattr(Path, "rglob", vanishing)
    assert store.delete_run(run) == Removed(0, 0)
    assert not store.job_dir(JOB).exists()
