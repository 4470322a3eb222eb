"""The Moderator gate: order of checks, consent, NSFW on input and output, audit, forget, threads.

The NSFW detector here is a stand-in implementing ``moderation.nsfw.NsfwDetector`` (the real
model is exercised in test_moderation_nsfw.py) so that high scores can be produced on demand.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from livingphoto.errors import ConsentRequired, PolicyRefusal, RateLimited, UsageError
from moderation.config import ModerationSettings
from moderation.gate import ModerationRequest, Moderator
from moderation.requester import Requester

IMAGE = np.full((64, 64, 3), 128, dtype=np.uint8)
ALICE = Requester("telegram", "1001", "-500")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class ScriptedDetector:
    """Scores every image with ``value``; counts calls."""

    def __init__(self, value: float = 0.01) -> None:
        self.value = value
        self.calls = 0

    def score(self, image: NDArray[np.uint8]) -> float:
        self.calls += 1
        return self.value


SETTINGS = ModerationSettings(rate_user_per_min=3, rate_chat_per_min=100, daily_quota=100)


@pytest.fixture
def detector() -> ScriptedDetector:
    return ScriptedDetector()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def moderator(tmp_path: Path, detector: ScriptedDetector, clock: Clock) -> Iterator[Moderator]:
    with Moderator.open(SETTINGS, tmp_path, detector=detector, clock=clock) as gate:
        yield gate


def request(prompt: str = "blink", **fields: object) -> ModerationRequest:
    return ModerationRequest(ALICE, prompt, IMAGE, **fields)  # type: ignore[arg-type]


def test_allowed_request_is_audited_without_the_prompt(moderator: Moderator) -> None:
    moderator.check_request(request("subtle blink", consent_attested=True))
    [entry] = moderator.audit.recent()
    assert entry.outcome == "allowed" and entry.excerpt == ""
    assert entry.platform == "telegram" and entry.user_id == "1001" and entry.chat_id == "-500"


def test_consent_required_then_recorded_then_remembered(moderator: Moderator) -> None:
    with pytest.raises(ConsentRequired) as caught:
        moderator.check_request(request())
    assert caught.value.http_status == 403 and caught.value.exit_code == 3
    assert moderator.limiter.used_today(ALICE) == 0  # refunded
    moderator.check_request(request(consent_attested=True))
    record = moderator.consent.status(ALICE)
    assert record is not None and record.valid
    moderator.check_request(request())  # the ledger remembers
    assert [e.category for e in moderator.audit.recent()] == ["", "", "consent"]


def test_no_consent_needed_without_a_person(moderator: Moderator) -> None:
    moderator.check_request(request("the cat licks its paw", shows_person=False))
    assert moderator.consent.status(ALICE) is None


def test_policy_refusal_comes_before_consent_and_is_audited(
    moderator: Moderator, detector: ScriptedDetector
) -> None:
    with pytest.raises(PolicyRefusal) as caught:
        moderator.check_request(request("take off her sh1rt"))
    assert caught.value.category == "sexual"
    assert detector.calls == 0  # the image was never looked at
    [entry] = moderator.audit.refusals()
    assert (entry.category, entry.rule) == ("sexual", "undressing_take_off")
    assert entry.excerpt == "take off her sh1rt"


def test_rate_limit_comes_first(moderator: Moderator) -> None:
    for _ in range(3):
        with pytest.raises(PolicyRefusal):
            moderator.check_request(request("nude"))
    with pytest.raises(RateLimited) as caught:
        moderator.check_request(request("blink", consent_attested=True))
    assert caught.value.retry_after_s > 0
    assert moderator.audit.refusals(1)[0].category == "rate_limit"
    assert moderator.audit.refusals(1)[0].rule == "user_rate"


def test_nsfw_input_image_is_refused(moderator: Moderator, detector: ScriptedDetector) -> None:
    detector.value = 0.97
    with pytest.raises(PolicyRefusal) as caught:
        moderator.check_request(request(consent_attested=True))
    assert caught.value.category == "nsfw_image" and caught.value.rule == "input_image"
    entry = moderator.audit.refusals(1)[0]
    assert entry.detail == "score=0.970"


def test_nan_score_fails_closed(moderator: Moderator, detector: ScriptedDetector) -> None:
    detector.value = float("nan")
    with pytest.raises(PolicyRefusal):
        moderator.check_request(request(consent_attested=True))


def test_check_frames_samples_and_refuses(moderator: Moderator, detector: ScriptedDetector) -> None:
    frames = [IMAGE] * 72
    moderator.check_frames(frames, ALICE)
    assert detector.calls == SETTINGS.nsfw_frame_samples
    detector.value = 0.9
    with pytest.raises(PolicyRefusal) as caught:
        moderator.check_frames(frames, ALICE)
    assert caught.value.rule == "output_frames"
    assert moderator.audit.refusals(1)[0].stage == "frames"
    with pytest.raises(UsageError):
        moderator.check_frames([], ALICE)


def test_bad_image_and_requester_are_usage_errors(moderator: Moderator) -> None:
    grey = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(UsageError, match="RGB"):
        moderator.check_request(ModerationRequest(ALICE, "blink", grey, consent_attested=True))
    with pytest.raises(UsageError, match="user id"):
        moderator.check_request(ModerationRequest(Requester("http", ""), "blink", IMAGE))


def test_too_long_prompt_is_a_usage_error(tmp_path: Path, clock: Clock) -> None:
    settings = ModerationSettings(max_prompt_chars=10)
    with Moderator.open(settings, tmp_path, detector=ScriptedDetector(), clock=clock) as gate:
        with pytest.raises(UsageError, match="too long"):
            gate.check_request(request("blink " * 5))
        assert gate.audit.refusals(1)[0].category == "invalid_prompt"


def test_forget_deletes_state_and_anonymises_the_audit(moderator: Moderator) -> None:
    moderator.check_request(request(consent_attested=True))
    with pytest.raises(PolicyRefusal):
        moderator.check_request(request("make him say he resigns"))
    counts = moderator.forget(ALICE)
    assert counts == {
        "consent_records": 1,
        "rate_buckets": 1,
        "quota_days": 1,
        "audit_rows_anonymised": 2,
    }
    assert moderator.consent.status(ALICE) is None
    assert moderator.limiter.used_today(ALICE) == 0
    entries = moderator.audit.recent()
    assert all(e.user_id.startswith("~") and e.user_id != "1001" for e in entries)
    assert all(e.excerpt == "" and e.chat_id == "" for e in entries)
    assert {e.category for e in entries} == {"", "speech_impersonation"}  # decisions kept
    [deletion] = moderator.audit.deletions()
    assert deletion.reason == "forget" and deletion.counts == counts
    assert deletion.subject == entries[0].user_id


def test_revoke_and_record_media_deletion(moderator: Moderator) -> None:
    moderator.consent.record(ALICE)
    revocation = moderator.revoke(ALICE)
    assert revocation.records_revoked == 1
    moderator.record_deletion(ALICE, "revoke", {"media_files": 3})
    moderator.record_deletion(None, "retention", {"media_files": 12})
    reasons = [(d.reason, d.counts) for d in moderator.audit.deletions()]
    assert reasons == [
        ("retention", {"media_files": 12}),
        ("revoke", {"media_files": 3}),
        ("revoke", {"consent_records_revoked": 1}),
    ]
    with pytest.raises(ConsentRequired):
        moderator.check_request(request())


def test_audit_retention_prunes_old_decisions(tmp_path: Path, clock: Clock) -> None:
    settings = ModerationSettings(audit_retention_days=1)
    with Moderator.open(settings, tmp_path, detector=ScriptedDetector(), clock=clock) as gate:
        gate.check_request(request(shows_person=False))
    clock.now += 2 * 86400
    with Moderator.open(settings, tmp_path, detector=ScriptedDetector(), clock=clock) as gate:
        assert gate.audit.recent() == []


def test_shared_across_threads(tmp_path: Path, clock: Clock) -> None:
    settings = ModerationSettings(rate_user_per_min=0, rate_chat_per_min=0, daily_quota=1000)
    errors: list[BaseException] = []
    with Moderator.open(settings, tmp_path, detector=ScriptedDetector(), clock=clock) as gate:

        def work(n: int) -> None:
            who = Requester("discord", f"user-{n % 4}", "guild")
            try:
                for i in range(15):
                    prompt = "nude" if i % 5 == 0 else "smile"
                    with contextlib.suppress(PolicyRefusal):
                        gate.check_request(
                            ModerationRequest(who, prompt, IMAGE, consent_attested=True)
                        )
            except BaseException as error:  # collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(gate.audit.recent(1000)) == 8 * 15
        assert len(gate.audit.refusals(1000)) == 8 * 3
        assert (
            sum(gate.limiter.used_today(Requester("discord", f"user-{k}")) for k in range(4)) == 120
        )


def test_unknown_detector_setting_is_a_usage_error(tmp_path: Path) -> None:
    settings = ModerationSettings(nsfw_detector="no.such.module:Detector")
    with (
        pytest.raises(UsageError, match="cannot import NSFW detector"),
        Moderator.open(settings, tmp_path),
    ):
        pass


class BatchDetector:
    """Scores an image by its first pixel (value / 100); records each ``score_batch`` call."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def score(self, image: NDArray[np.uint8]) -> float:
        raise AssertionError("check_frames should score frames in one batch")

    def score_batch(self, images: list[NDArray[np.uint8]]) -> list[float]:
        self.batches.append(len(images))
        return [float(image[0, 0, 0]) / 100 for image in images]


def test_check_frames_scores_one_batch_and_refuses_on_any_frame(tmp_path: Path) -> None:
    detector = BatchDetector()
    frames = [np.full((8, 8, 3), 1, np.uint8) for _ in range(12)]
    with Moderator.open(SETTINGS, tmp_path, detector=detector) as gate:
        gate.check_frames(frames, ALICE, limit=len(frames))
        assert detector.batches == [12]
        gate.check_frames(frames, ALICE)  # default limit: nsfw_frame_samples, one call
        assert detector.batches == [12, SETTINGS.nsfw_frame_samples]
        frames[7] = np.full((8, 8, 3), 99, np.uint8)  # one explicit frame among clean ones
        with pytest.raises(PolicyRefusal) as caught:
            gate.check_frames(frames, ALICE, limit=len(frames))
        assert caught.value.rule == "output_frames"
        assert gate.audit.refusals(1)[0].detail == "score=0.990"
        with pytest.raises(UsageError, match="at least 1"):
            gate.check_frames(frames, ALICE, limit=0)


def test_a_score_computed_earlier_is_used_as_a_fresh_one(
    tmp_path: Path, detector: ScriptedDetector
) -> None:
    """The service scores a photo while it is inspected: the gate then uses that score (the
    detector is not run again), clamped, and a NaN fails closed as a fresh score does."""
    unlimited = ModerationSettings(rate_user_per_min=0, rate_chat_per_min=0, daily_quota=0)
    with Moderator.open(unlimited, tmp_path, detector=detector) as moderator:
        moderator.check_request(request(consent_attested=True, image_score=0.02))
        assert moderator.audit.recent()[0].detail == "score=0.020"
        for known in (0.99, 7.0, float("nan")):
            with pytest.raises(PolicyRefusal, match="explicit image"):
                moderator.check_request(request(consent_attested=True, image_score=known))
        moderator.check_request(request(consent_attested=True, image_score=-3.0))  # clamped
        assert moderator.audit.recent()[0].detail == "score=0.000"
        assert detector.calls == 0
        moderator.check_request(request(consent_attested=True))  # not known: scored here
        assert detector.calls == 1
