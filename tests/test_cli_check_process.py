"""The CLI's moderation check in a helper process gives the in-process verdict, audited, and a
check whose process cannot answer runs in-process instead: never let through unchecked."""

from __future__ import annotations

from pathlib import Path

import images
import numpy as np
import pytest
from numpy.typing import NDArray

from livingphoto.errors import PolicyRefusal
from moderation.audit import AuditLog
from moderation.cli_check import CheckProcess, CheckUnavailable, CliModeration, _error_from
from moderation.intake import load_image


@pytest.fixture(scope="module")
def photo() -> NDArray[np.uint8]:
    return load_image(images.astronaut_bytes()).rgb


def _audited(data_dir: Path) -> list[str]:
    log = AuditLog.open_readonly(data_dir)
    try:
        return [entry.outcome for entry in log.recent()]
    finally:
        log.close()


def test_an_allowed_request_is_allowed_and_audited(
    tmp_path: Path, photo: NDArray[np.uint8]
) -> None:
    with CheckProcess(tmp_path).start() as check:
        check.submit("subtle blink, gentle breathing", photo)
        check.verdict()  # returns: allowed
    assert _audited(tmp_path) == ["allowed"]


def test_a_refusal_comes_back_as_the_same_error(tmp_path: Path, photo: NDArray[np.uint8]) -> None:
    prompt = "make her take off her shirt"
    with pytest.raises(PolicyRefusal) as here:
        CliModeration.load().check(prompt, photo, tmp_path / "here")
    with CheckProcess(tmp_path / "there").start() as check:
        check.submit(prompt, photo)
        with pytest.raises(PolicyRefusal) as there:
            check.verdict()
    assert (there.value.category, str(there.value), there.value.rule) == (
        here.value.category,
        str(here.value),
        here.value.rule,
    )
    assert _audited(tmp_path / "there") == ["refused"]


def test_a_process_that_died_gives_no_verdict(tmp_path: Path, photo: NDArray[np.uint8]) -> None:
    with CheckProcess(tmp_path).start() as check:
        check.close()  # as if it had crashed
        check.submit("subtle blink", photo)
        with pytest.raises(CheckUnavailable):
            check.verdict()


def test_an_unknown_answer_is_no_verdict() -> None:
    assert isinstance(_error_from({"error": "SomethingElse", "message": "?"}), CheckUnavailable)
    assert isinstance(_error_from({}), CheckUnavailable)


def test_a_big_photo_is_checked_on_a_copy_at_most_1024_px_long() -> None:
    from moderation.cli_check import CHECK_LONG_SIDE, moderation_copy

    small = np.zeros((300, 200, 3), dtype=np.uint8)
    assert moderation_copy(small) is small
    big = np.full((3000, 4000, 3), 200, dtype=np.uint8)
    copy = moderation_copy(big)
    assert copy.shape == (768, CHECK_LONG_SIDE, 3) and copy.dtype == np.uint8
    assert int(copy[100, 100, 0]) == 200
