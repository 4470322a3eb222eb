"""Fair order of waiting jobs: round-robin over users, least recently served first.

A user's jobs keep their own submission order; between users, the one served longest ago (or
never) goes next, ties broken by the oldest waiting job. One user with twenty requests waits
behind everyone else's first request instead of starving them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence

from generation.service.store import JobRecord

UserKey = tuple[str, str]


def user_key(job: JobRecord) -> UserKey:
    return (job.requester.platform, job.requester.user_id)


def fair_order(waiting: Sequence[JobRecord], last_served: Mapping[UserKey, int]) -> list[JobRecord]:
    """``waiting`` (any order) in the order the scheduler will start them."""
    per_user: dict[UserKey, deque[JobRecord]] = {}
    for job in sorted(waiting, key=lambda j: (j.created_at, j.id)):
        per_user.setdefault(user_key(job), deque()).append(job)
    heap = [
        (last_served.get(user, -1), jobs[0].created_at, user) for user, jobs in per_user.items()
    ]
    heapq.heapify(heap)
    tick = max(last_served.values(), default=0)
    order: list[JobRecord] = []
    while heap:
        _, _, user = heapq.heappop(heap)
        jobs = per_user[user]
        order.append(jobs.popleft())
        tick += 1
        if jobs:
            heapq.heappush(heap, (tick, jobs[0].created_at, user))
    return order
