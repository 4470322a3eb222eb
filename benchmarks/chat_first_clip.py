"""Time from a user's photo to the first and to the last clip in a Telegram chat (emulator).

Usage::

    .venv/bin/python benchmarks/chat_first_clip.py [--runs 3] [--takes 3] [--seconds 3] [--size 512]
        [--photo examples/astronaut.jpg | --photo synthetic]

The user sends a real portrait (the astronaut: dlib's HOG finds the face, as in most portraits);
``--photo synthetic`` sends the tests' drawn portrait instead, which HOG misses, so the second
face detector runs too (about 65 ms more before the job is accepted).

The real bot (python-telegram-bot) talks to the Bot API emulator of ``tests/emulators`` and to the
real service (warp backend, embedded queue) on 127.0.0.1, all in this process. Consent is recorded
up front, so the clock starts when the photo with its ``/animate`` caption reaches the bot (as
right after a user's consent) and stops at each ``sendAnimation`` the emulator receives. The
table shows medians over the runs (one bot and service for all; the first run is a warm-up that
is not counted). Goal on the CPU: first clip <= 0.5 x the last.

A backend that renders every take in one batched call (diffusers on a GPU) is exempt: its takes
exist only once the batch returns, so they reach the chat together.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from chatkit import ChatTiming, telegram_timings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--takes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--photo",
        type=Path,
        default=ROOT / "examples" / "astronaut.jpg",
        help="the photo the user sends (default: a real portrait; 'synthetic': the tests' drawn "
        "portrait, which dlib's HOG misses, so the second face detector runs too)",
    )
    args = parser.parse_args()
    photo = None if str(args.photo) == "synthetic" else args.photo.read_bytes()
    with tempfile.TemporaryDirectory(prefix="lp-chat-") as tmp:
        timings = asyncio.run(
            telegram_timings(
                Path(tmp),
                runs=args.runs + 1,
                takes=args.takes,
                seconds=args.seconds,
                size=args.size,
                backend="warp",
                photo=photo,
                # One user sends every photo: the service's per-user rate limit (6 a minute by
                # default) would refuse the later runs, and a refused job never gets clips.
                env={"LIVINGPHOTO_RATE_USER_PER_MIN": "0"},
            )
        )
    counted: list[ChatTiming] = timings[1:]
    for k, t in enumerate(counted, 1):
        print(
            f"run {k}: accepted {t.accepted_s:.2f} s, started {t.started_s:.2f} s, "
            f"first clip {t.first_clip_s:.2f} s, last {t.last_clip_s:.2f} s, "
            f"job done {t.job_done_s:.2f} s",
            file=sys.stderr,
        )
    first = statistics.median(t.first_clip_s for t in counted)
    last = statistics.median(t.last_clip_s for t in counted)
    done = statistics.median(t.job_done_s for t in counted)
    ratio = statistics.median(t.first_clip_s / t.last_clip_s for t in counted)
    print(
        f"Telegram chat, warp backend: {args.takes} takes x {args.seconds:g} s at {args.size} px, "
        f"photo {args.photo.name}; "
        f"median of {len(counted)} runs; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| from the photo (consent given) to | median |")
    print("|---|---|")
    accepted = statistics.median(t.accepted_s for t in counted)
    started = statistics.median(t.started_s for t in counted)
    print(f"| job accepted by the service (photo fetched, moderated) | {accepted:.2f} s |")
    print(f"| job started by the worker | {started:.2f} s |")
    print(f"| first clip in chat | {first:.2f} s |")
    print(f"| job done at the service | {done:.2f} s |")
    print(f"| last clip in chat | {last:.2f} s |")
    print(f"| **first / last** (per run) | {ratio:.2f} |")
    print(f"\ngoal first <= 0.5 x last: {'met' if ratio <= 0.5 else 'MISSED'} ({ratio:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
