"""Moderation cost per request: policy + NSFW on a 512 px photo + consent lookup + rate limit +
audit write, with the model loaded once (as the service does). Goal: median under 150 ms on CPU.

Usage::

    .venv/bin/python benchmarks/moderation_check.py [--runs 30] [--photo examples/astronaut.jpg]

Prints one table of medians (and 90th percentiles) over ``--runs`` runs of each stage and of the
whole ``Moderator.check_request``; the data directory is a temporary one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from moderation.config import ModerationSettings
from moderation.gate import ModerationRequest, Moderator
from moderation.requester import Requester

ROOT = Path(__file__).resolve().parents[1]

PROMPTS = (
    "subtle blink, slight head tilt, gentle breathing",
    "take off her glasses and smile",
    "hair moving in the wind while she laughs softly",
    "a child blowing out birthday candles",
)
GOAL_MS = 150.0


def timed(fn: Callable[[int], object], runs: int) -> list[float]:
    fn(0)  # warm-up
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--photo", type=Path, default=ROOT / "examples" / "astronaut.jpg")
    args = parser.parse_args()

    with Image.open(args.photo) as im:
        rgb = im.convert("RGB")
        rgb.thumbnail((512, 512))
        image = np.asarray(rgb, dtype=np.uint8)
    # limits high enough never to refuse, but every request still pays for the buckets and quota
    settings = ModerationSettings(
        rate_user_per_min=10**6, rate_chat_per_min=10**6, daily_quota=10**6
    )
    user = Requester("telegram", "bench-user", "bench-chat")

    with tempfile.TemporaryDirectory() as data_dir:
        load_start = time.perf_counter()
        with Moderator.open(settings, Path(data_dir)) as gate:
            load_ms = (time.perf_counter() - load_start) * 1000.0
            gate.consent.record(user)
            stages: list[tuple[str, list[float]]] = [
                ("prompt policy", timed(lambda i: gate.policy.check(PROMPTS[i % 4]), args.runs)),
                ("NSFW score (512 px)", timed(lambda i: gate.detector.score(image), args.runs)),
                ("consent lookup", timed(lambda i: gate.consent.has_valid(user), args.runs)),
                ("rate limit + quota", timed(lambda i: gate.limiter.acquire(user), args.runs)),
                (
                    "audit write",
                    timed(lambda i: gate.audit.record(user, "allowed", prompt="x"), args.runs),
                ),
                (
                    "check_request (all)",
                    timed(
                        lambda i: gate.check_request(
                            ModerationRequest(user, PROMPTS[i % 4], image)
                        ),
                        args.runs,
                    ),
                ),
                (
                    "check_frames (4 of 72)",
                    timed(lambda i: gate.check_frames([image] * 72, user), args.runs),
                ),
            ]

    print(f"model + databases loaded once in {load_ms:.0f} ms; {args.runs} runs per row")
    print(f"{'stage':<26}{'median ms':>11}{'p90 ms':>9}")
    for name, samples in stages:
        p90 = statistics.quantiles(samples, n=10)[-1]
        print(f"{name:<26}{statistics.median(samples):>11.2f}{p90:>9.2f}")
    total = statistics.median(stages[5][1])
    verdict = "meets" if total < GOAL_MS else "MISSES"
    print(f"check_request median {total:.1f} ms {verdict} the {GOAL_MS:.0f} ms goal")


if __name__ == "__main__":
    main()
