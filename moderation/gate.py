"""The moderation gate: the one object the CLI, the service and the bots ask before generating.

CONTRACT (relied on by the service and the CLI; implemented by the moderation work, issue 4):

    async with/with Moderator.open(settings, data_dir) as moderator:   # opens ledger + audit DBs
        moderator.check_request(req)          # raises ConsentRequired | PolicyRefusal | RateLimited
        moderator.check_frames(frames, requester)  # sampled output frames (NSFW); raises PolicyRefusal
        moderator.consent.record(requester, wording_version) / .revoke(requester) / .status(requester)
        moderator.forget(requester)           # consent records + rate state; audit keeps decisions only

Every decision is written to the audit log (never the image). ``check_request`` with
``consent_attested=True`` records the attestation in the ledger before checking.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Requester:
    platform: str  # "cli" | "telegram" | "discord" | "http"
    user_id: str
    chat_id: str = ""  # chat / guild id, for per-chat rate limits and group votes


@dataclass(frozen=True)
class ModerationRequest:
    requester: Requester
    prompt: str
    image: NDArray[np.uint8]  # sanitised RGB image from moderation.intake
    consent_attested: bool = False
    # True when a face/person was detected: consent is required only then.
    shows_person: bool = True
