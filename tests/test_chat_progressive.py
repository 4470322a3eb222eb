"""Progressive delivery end to end: the first take is in the Telegram chat before the job is done.

The sleep backend streams its takes (one every ``seconds / takes``), so the order is certain:
take 1 is encoded, scored and checked, downloaded by the bot and sent while takes 2 and 3 are
still being made.
"""

from __future__ import annotations

from pathlib import Path

from chatkit import telegram_timings


async def test_first_clip_reaches_the_chat_before_the_job_is_done(tmp_path: Path) -> None:
    [timing] = await telegram_timings(
        tmp_path, runs=1, takes=3, seconds=1.0, size=128, backend="sleep", sleep_seconds=3.0
    )
    assert timing.takes == 3
    assert timing.first_clip_s < timing.job_done_s, timing
    assert timing.first_clip_s < timing.last_clip_s, timing
    # Take 1 came about one take's time (1 s) before the last one, not with it.
    assert timing.last_clip_s - timing.first_clip_s > 1.0, timing
