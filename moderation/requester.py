"""Who asks: the ``Requester`` identity shared by the gate, consent, rate limits, audit, the service
and the bots (a module of its own, so none of them imports another to name it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requester:
    """One user on one platform.

    ``platform`` is ``"cli"``, ``"telegram"``, ``"discord"`` or ``"http"``; ``user_id`` the
    platform's user id as text; ``chat_id`` the chat or guild id (per-chat rate limits and group
    votes), empty when there is none.
    """

    platform: str
    user_id: str
    chat_id: str = ""
