"""Cancellation hygiene for the service's long-running tasks.

Some libraries (redis-py among them) can swallow a cancellation that lands inside a command,
or turn it into another exception. A loop that logs errors and carries on would then never
stop. Every loop therefore calls ``reraise_if_cancelling`` once per turn and in its broad
``except`` blocks, and tasks are stopped with ``stop_tasks``, which never waits forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)


def reraise_if_cancelling() -> None:
    """Raise ``CancelledError`` if the current task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def stop_tasks(tasks: Iterable[asyncio.Task[object]], grace_s: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them, at most ``grace_s`` seconds."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=grace_s)
    for task in stuck:
        log.warning("task %s did not stop within %.0f s", task.get_name(), grace_s)
