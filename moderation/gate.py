"""The moderation gate: the one object the CLI, the service and the bots ask before generating.

CONTRACT (relied on by the service and the CLI; implemented by the moderation work, issue 4):

    with Moderator.open(settings, data_dir) as moderator:   # opens ledger + audit DBs, loads models
        moderator.check_request(req)          # raises ConsentRequired | PolicyRefusal | RateLimited
        moderator.check_frames(frames, requester)  # sampled output frames (NSFW); raises PolicyRefusal
        moderator.consent.record(requester, wording_version) / .revoke(requester) / .status(requester)
        moderator.forget(requester)           # consent records + rate state; audit keeps decisions only

Every decision is written to the audit log (never the image). ``check_request`` with
``consent_attested=True`` records the attestation in the ledger (at the consent step below, so a
request refused earlier records nothing).

``check_request`` runs, in this order, and stops at the first refusal:

1. rate limits and the daily quota (``RateLimited``, a ``RateLimitExceeded`` naming the limit);
2. the prompt policy (``PolicyRefusal`` with the category, or ``UsageError`` for an over-long
   prompt);
3. consent, only when ``shows_person``: ``consent_attested`` records an attestation first;
   without a valid record ``ConsentRequired`` is raised and the quota unit is refunded;
4. the NSFW detector on the (sanitised) input image (``PolicyRefusal``, category ``nsfw_image``).

Everything here is thread-safe: the service may share one ``Moderator`` across its job threads.
Both SQLite databases (``moderation.sqlite3``: consent ledger and quota; ``audit.sqlite3``: the
audit log) and the NSFW model are opened once, in ``Moderator.open``.

Deleting media is the service's job (it owns the files). For ``/forget`` the service calls
``moderator.forget(requester)``, deletes that user's photos and clips, then reports them with
``moderator.record_deletion(requester, "forget", {"media_files": n})``; for a consent revocation
it calls ``moderator.revoke(requester)`` and does the same with reason ``"revoke"``; its retention
sweeps report with ``record_deletion(None, "retention", {...})``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from livingphoto.errors import ConsentRequired, PolicyRefusal, RateLimited, UsageError
from moderation import audit as audit_module
from moderation import consent as consent_module
from moderation import ratelimit as ratelimit_module
from moderation.audit import AuditLog
from moderation.config import ModerationSettings
from moderation.consent import CONSENT_VERSION, ConsentLedger, Revocation
from moderation.nsfw import (
    NsfwDetector,
    check_image,
    checked_score,
    checked_scores,
    clamped_score,
    load_detector,
)
from moderation.policy import PromptPolicy
from moderation.ratelimit import RateLimiter
from moderation.requester import Requester
from moderation.store import Store

__all__ = ["ModerationRequest", "Moderator", "Requester"]

logger = logging.getLogger(__name__)

MODERATION_DB = "moderation.sqlite3"
Clock = Callable[[], float]

NSFW_CATEGORY = "nsfw_image"
_NSFW_MESSAGE = (
    "Refused (explicit image): this photo looks sexually explicit and can't be animated."
)
_NSFW_OUTPUT_MESSAGE = (
    "Refused (explicit image): the generated clip looked sexually explicit and was discarded."
)
_NSFW_SUGGESTION = "You can send a different photo, for example a portrait with clothes on."
CONSENT_MESSAGE = (
    "consent needed: confirm that you are the person in this photo or have their permission "
    f"(their parent or guardian for a child) — consent wording {CONSENT_VERSION}"
)
CLI_CONSENT_MESSAGE = (
    "this photo shows a person: pass --consent to confirm that you are the person pictured or "
    "have their permission (their parent or guardian for a child)"
)


@dataclass(frozen=True)
class ModerationRequest:
    requester: Requester
    prompt: str
    image: NDArray[np.uint8]  # sanitised RGB image from moderation.intake
    consent_attested: bool = False
    # True when a face/person was detected: consent is required only then.
    shows_person: bool = True
    # The NSFW detector's score of ``image`` when it was already computed (the service scores
    # a photo while it is inspected, before it is submitted); None: scored here.
    image_score: float | None = None


class Moderator:
    """The gate. Build it with ``Moderator.open``; see the module docstring."""

    def __init__(
        self,
        settings: ModerationSettings,
        policy: PromptPolicy,
        detector: NsfwDetector,
        consent: ConsentLedger,
        limiter: RateLimiter,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.detector = detector
        self.consent = consent
        self.limiter = limiter
        self.audit = audit

    @classmethod
    @contextmanager
    def open(
        cls,
        settings: ModerationSettings,
        data_dir: Path,
        *,
        detector: NsfwDetector | None = None,
        policy: PromptPolicy | None = None,
        clock: Clock = time.time,
    ) -> Iterator[Moderator]:
        """Open the databases in ``data_dir`` and load the policy and the NSFW model, once.

        ``detector``, ``policy`` and ``clock`` may be passed in (tests, benchmarks, a process
        that already holds a model); otherwise they come from ``settings``.
        """
        if policy is None:
            policy = PromptPolicy.from_settings(settings)
        if detector is None:
            detector = load_detector(settings.nsfw_detector)
        with ExitStack() as stack:
            state = Store.open(
                data_dir / MODERATION_DB, consent_module.SCHEMA + ratelimit_module.SCHEMA
            )
            stack.callback(state.close)
            audit_store = Store.open(data_dir / audit_module.AUDIT_DB, audit_module.SCHEMA)
            stack.callback(audit_store.close)
            audit = AuditLog(audit_store, clock, settings.audit_excerpt_chars)
            limiter = RateLimiter(settings, state, clock)
            limiter.prune()
            audit.prune(settings.audit_retention_days)
            yield cls(settings, policy, detector, ConsentLedger(state, clock), limiter, audit)

    # -- checks ----------------------------------------------------------------------------

    def check_request(self, req: ModerationRequest) -> None:
        """Allow the request or raise (see the module docstring for the order)."""
        who = req.requester
        if not who.platform or not who.user_id:
            raise UsageError("a requester needs a platform and a user id")
        check_image(req.image)
        try:
            self.limiter.acquire(who)
        except RateLimited as error:
            self.audit.record(
                who, "refused", category="rate_limit", rule=getattr(error, "rule", "")
            )
            raise
        try:
            verdict = self.policy.check(req.prompt)
        except UsageError:
            self.audit.record(who, "refused", category="invalid_prompt", rule="too_long")
            raise
        if verdict is not None:
            self._refuse(who, verdict.category, verdict.rule, req.prompt)
            raise verdict.refusal()
        if req.shows_person:
            if req.consent_attested:
                self.consent.record(who)
            elif not self.consent.has_valid(who):
                self.limiter.refund(who)
                self._refuse(who, "consent", "missing", req.prompt)
                raise ConsentRequired(
                    CLI_CONSENT_MESSAGE if who.platform == "cli" else CONSENT_MESSAGE
                )
        score = (
            checked_score(self.detector, req.image)
            if req.image_score is None
            else clamped_score(req.image_score)  # as a fresh one is checked
        )
        if score >= self.settings.nsfw_threshold:
            self._refuse(who, NSFW_CATEGORY, "input_image", req.prompt, f"score={score:.3f}")
            raise PolicyRefusal(
                NSFW_CATEGORY,
                f"{_NSFW_MESSAGE} {_NSFW_SUGGESTION}",
                rule="input_image",
                suggestion=_NSFW_SUGGESTION,
            )
        self.audit.record(who, "allowed", prompt=req.prompt, detail=f"score={score:.3f}")

    def check_frames(
        self,
        frames: Sequence[NDArray[np.uint8]],
        requester: Requester,
        *,
        limit: int | None = None,
    ) -> None:
        """Score up to ``limit`` (default ``nsfw_frame_samples``) evenly spaced frames, all in
        one detector call (``checked_scores``); refuse if any is at or above
        ``nsfw_frame_threshold``. A caller that already sampled the frames of every clip of a
        job (the service) passes them all with ``limit=len(frames)``."""
        if len(frames) == 0:
            raise UsageError("no frames to check")
        wanted = self.settings.nsfw_frame_samples if limit is None else limit
        if wanted < 1:
            raise UsageError(f"the frame limit must be at least 1, got {wanted}")
        count = min(len(frames), wanted)
        picks = sorted({round(i * (len(frames) - 1) / max(1, count - 1)) for i in range(count)})
        score = max(checked_scores(self.detector, [frames[i] for i in picks]))
        if score >= self.settings.nsfw_frame_threshold:
            self._refuse(
                requester, NSFW_CATEGORY, "output_frames", "", f"score={score:.3f}", "frames"
            )
            raise PolicyRefusal(
                NSFW_CATEGORY,
                f"{_NSFW_OUTPUT_MESSAGE} {_NSFW_SUGGESTION}",
                rule="output_frames",
                suggestion=_NSFW_SUGGESTION,
            )
        self.audit.record(requester, "allowed", stage="frames", detail=f"score={score:.3f}")

    # -- consent and forgetting ------------------------------------------------------------

    def revoke(self, requester: Requester) -> Revocation:
        """Withdraw consent (records kept, marked revoked) and audit it. The caller then deletes
        the requester's media and reports them with ``record_deletion(requester, "revoke", …)``."""
        revocation = self.consent.revoke(requester)
        self.record_deletion(
            requester, "revoke", {"consent_records_revoked": revocation.records_revoked}
        )
        return revocation

    def forget(self, requester: Requester) -> dict[str, int]:
        """Delete everything moderation keeps about ``requester``; returns counts.

        Consent records and the rate/quota state are deleted. Audit decisions are kept but
        anonymised (ids replaced by a pseudonym, refused-prompt excerpts dropped), and the
        deletion itself is recorded. Moderation keeps no per-user settings; the bots' own
        settings and the service's media are deleted by their owners.
        """
        counts = {"consent_records": self.consent.delete(requester)}
        counts.update(self.limiter.forget(requester))
        counts["audit_rows_anonymised"] = self.audit.anonymise(requester)
        self.record_deletion(requester, "forget", counts)
        return counts

    def record_deletion(
        self, requester: Requester | None, reason: str, counts: Mapping[str, int]
    ) -> None:
        """Keep an audit record of deleted data: ``requester`` None means a retention sweep."""
        if requester is None:
            self.audit.record_deletion("*", "*", reason, counts)
        else:
            self.audit.record_deletion(
                requester.platform, self.audit.pseudonym(requester), reason, counts
            )

    def _refuse(
        self,
        who: Requester,
        category: str,
        rule: str,
        prompt: str,
        detail: str = "",
        stage: str = "request",
    ) -> None:
        logger.info("moderation refused: %s/%s (%s)", category, rule, stage)
        self.audit.record(
            who, "refused", stage=stage, category=category, rule=rule, prompt=prompt,
            detail=detail,
        )  # fmt: skip
