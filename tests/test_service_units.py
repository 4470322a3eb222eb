"""Small pure parts of the service: fair order, job store recovery, metrics text, parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generation.service.fairness import fair_order
from generation.service.jobs import JobState, RenderOptions, RunResult, VariationRecord
from generation.service.metrics import Metrics
from generation.service.store import JobRecord, JobStore
from generation.service.submission import parse_submission
from livingphoto.errors import UsageError
from moderation.requester import Requester


def _job(job_id: str, user: str, created: float) -> JobRecord:
    return JobRecord(
        id=job_id,
        state=JobState.QUEUED,
        requester=Requester("test", user),
        prompt="blink",
        options=RenderOptions(),
        input_path=f"media/{job_id}/input.png",
        created_at=created,
    )


def test_fair_order_interleaves_users_least_recently_served_first() -> None:
    waiting = [_job(f"a{i}", "a", i) for i in range(4)] + [_job("b0", "b", 10), _job("c0", "c", 11)]
    assert [j.id for j in fair_order(waiting, {})] == ["a0", "b0", "c0", "a1", "a2", "a3"]
    # a was just served: b and c go first even though a's jobs are older.
    served = {("test", "a"): 5}
    assert [j.id for j in fair_order(waiting, served)] == ["b0", "c0", "a0", "a1", "a2", "a3"]


def test_store_recovers_unfinished_jobs_and_records_results_once(tmp_path: Path) -> None:
    with JobStore.open(tmp_path / "jobs.sqlite3") as store:
        for i, job_id in enumerate(["1" * 32, "2" * 32, "3" * 32]):
            store.insert(_job(job_id, f"u{i}", i))
        store.mark_dispatched("1" * 32, 4.0)
        store.mark_running("1" * 32, 1, 5.0)
        store.mark_dispatched("2" * 32, 4.5)
        result = RunResult(
            run_dir="media/x/run-1",
            variations=(VariationRecord(1, "media/x/run-1/variation-1.mp4", 7, 1, {}, 1.0, False),),
            generation_s=0.5,
        )
        assert store.finish_done("3" * 32, result, 9.0)
        assert not store.finish_done("3" * 32, result, 9.5)  # a second report changes nothing
        assert len(store.variations("3" * 32)) == 1
    with JobStore.open(tmp_path / "jobs.sqlite3") as store:
        assert store.recover(requeue_dispatched=True) == 2
        waiting = store.waiting()
        assert [j.id for j in waiting] == ["1" * 32, "2" * 32]
        assert store.counts_by_state()[JobState.DONE] == 1


def test_metrics_are_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe_generation(0.3)
    metrics.observe_generation(42.0)
    metrics.refused('nsfw "image"')
    text = metrics.render(3, {JobState.QUEUED: 3, JobState.DONE: 2})
    lines = text.splitlines()
    assert "livingphoto_queue_depth 3" in lines
    assert 'livingphoto_jobs{state="done"} 2' in lines
    assert 'livingphoto_generation_seconds_bucket{le="0.5"} 1' in lines
    assert 'livingphoto_generation_seconds_bucket{le="60"} 2' in lines
    assert 'livingphoto_generation_seconds_bucket{le="+Inf"} 2' in lines
    assert "livingphoto_generation_seconds_count 2" in lines
    assert 'livingphoto_refusals_total{category="nsfw \\"image\\""} 1' in lines
    for line in lines:
        assert line.startswith("#") or float(line.rsplit(" ", 1)[1]) >= 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe", "not valid JSON"),
        (json.dumps({"requester": {"platform": "t", "user_id": "1"}}), "prompt is required"),
        (json.dumps({"prompt": "x", "requester": {"platform": "t"}}), "user_id"),
        (
            json.dumps({"prompt": "x", "requester": {"platform": "t", "user_id": "1"}, "a": 1}),
            "unknown field in request: a",
        ),
        (
            json.dumps(
                {"prompt": "x", "requester": {"platform": "t", "user_id": "1"}, "fps": 1000}
            ),
            "fps must be from 8 to 30",
        ),
        (
            json.dumps(
                {
                    "prompt": "x",
                    "requester": {"platform": "t", "user_id": "1"},
                    "consent": {"attested": "yes"},
                }
            ),
            "consent.attested",
        ),
    ],
)
def test_submission_errors_name_the_field(raw: bytes | str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_submission(raw)


def test_a_valid_submission_keeps_numeric_ids_as_strings() -> None:
    sub = parse_submission(
        json.dumps(
            {
                "prompt": " blink ",
                "requester": {"platform": "telegram", "user_id": 42, "chat_id": -100},
                "consent": {"attested": True, "at": 1700000000},
                "parent": {"job_id": "a" * 32, "variation": 2, "adjust": "more"},
                "idempotency_key": "tg:1:2",
            }
        )
    )
    assert sub.requester == Requester("telegram", "42", "-100")
    assert sub.prompt == "blink" and sub.consent_attested
    assert sub.parent is not None and sub.parent.variation == 2


def _clip(path: Path, values: list[int], fps: float = 8.0) -> Path:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (32, 32))
    try:
        for value in values:
            writer.write(np.full((32, 32, 3), value, np.uint8))
    finally:
        writer.release()
    return path


def test_frame_budget_is_per_job_and_spread_over_each_clip() -> None:
    from generation.service.guard import JOB_FRAME_BUDGET, frame_counts, frame_indices

    # one sample per half second, capped per clip; unknown length: the per-clip cap
    assert frame_counts([(8, 8.0)], 4, JOB_FRAME_BUDGET) == [2]
    assert frame_counts([(80, 8.0)], 4, JOB_FRAME_BUDGET) == [4]
    assert frame_counts([(0, 0.0)], 4, JOB_FRAME_BUDGET) == [1]
    assert frame_counts([(3, 0.0)], 4, JOB_FRAME_BUDGET) == [3]
    # many clips share the job's budget, but each clip keeps at least one frame
    assert frame_counts([(80, 8.0)] * 4, 4, 8) == [2, 2, 2, 2]
    assert frame_counts([(80, 8.0)] * 10, 4, 8) == [1] * 10
    assert frame_indices(8, 2) == [2, 6]
    assert frame_indices(8, 1) == [4]
    assert frame_indices(3, 5) == [0, 1, 2]
    assert frame_indices(0, 3) == [0]


async def test_check_clips_scores_every_clip_in_one_batch(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from numpy.typing import NDArray

    from generation.service.guard import Guard, sample_frames
    from livingphoto.errors import PolicyRefusal
    from moderation.config import ModerationSettings
    from moderation.gate import Moderator

    class Detector:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def score(self, image: NDArray[np.uint8]) -> float:
            raise AssertionError("frames should be scored in one batch")

        def score_batch(self, images: list[NDArray[np.uint8]]) -> list[float]:
            self.batches.append(len(images))
            return [1.0 if image.mean() > 200 else 0.0 for image in images]

    clean = _clip(tmp_path / "a.mp4", [40] * 8)
    late_bad = _clip(tmp_path / "b.mp4", [40] * 6 + [250] * 2)  # only its 2nd sample is bad
    frames = sample_frames(late_bad, 2)
    assert [round(float(f.mean())) > 200 for f in frames] == [False, True]
    detector = Detector()
    with (
        Moderator.open(ModerationSettings(), tmp_path / "mod", detector=detector) as gate,
        ThreadPoolExecutor(1) as executor,
    ):
        guard = Guard(gate, executor)
        await guard.check_clips([clean, clean], Requester("test", "u"))
        assert detector.batches == [4]
        with pytest.raises(PolicyRefusal):
            await guard.check_clips([clean, late_bad], Requester("test", "u"))
        assert detector.batches == [4, 4]
        await guard.check_clips([tmp_path / "missing.mp4"], Requester("test", "u"))
        assert detector.batches == [4, 4]


async def test_guard_runs_at_most_its_thread_count_of_checks_at_once(tmp_path: Path) -> None:
    """A burst waits for the guard's threads in arrival order instead of all running at once."""
    import asyncio
    import threading
    import time

    import numpy as np
    from numpy.typing import NDArray

    from generation.service.guard import Guard
    from moderation.config import ModerationSettings

    class SlowDetector:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.running = 0
            self.most = 0

        def score(self, image: NDArray[np.uint8]) -> float:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.05)
            with self.lock:
                self.running -= 1
            return 0.0

        def score_batch(self, images: list[NDArray[np.uint8]]) -> list[float]:
            return [self.score(image) for image in images]

    detector = SlowDetector()
    settings = ModerationSettings(threads=2, rate_user_per_min=0, rate_chat_per_min=0)
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    async with Guard.open(settings, tmp_path / "mod", detector=detector) as guard:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                guard.check_request(Requester("test", f"u{i}"), "subtle blink", image, True)
                for i in range(6)
            )
        )
        elapsed = time.perf_counter() - started
    assert detector.most == 2
    assert elapsed >= 3 * 0.05  # six 50 ms checks, two at a time


def test_moderation_threads_setting() -> None:
    import os

    from moderation.config import MAX_AUTO_THREADS, ModerationSettings, usable_cpus

    assert ModerationSettings.from_env({"LIVINGPHOTO_MODERATION_THREADS": "3"}).thread_count() == 3
    auto = ModerationSettings.from_env({}).thread_count()
    assert auto == min(MAX_AUTO_THREADS, usable_cpus())
    assert 1 <= auto <= (os.cpu_count() or 1)
    with pytest.raises(UsageError, match="LIVINGPHOTO_MODERATION_THREADS"):
        ModerationSettings.from_env({"LIVINGPHOTO_MODERATION_THREADS": "-1"})
    with pytest.raises(UsageError, match="LIVINGPHOTO_MODERATION_THREADS"):
        ModerationSettings.from_env({"LIVINGPHOTO_MODERATION_THREADS": "two"})


def test_stored_photo_is_lossless_pixels_only_png() -> None:
    """The sanitised photo kept for the worker: the exact pixels, and no chunk but the image's."""
    import io
    import struct

    import numpy as np
    from PIL import Image

    from generation.service.media import encode_png

    rgb = np.random.default_rng(7).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    png = encode_png(rgb)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, offset = set(), 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        chunks.add(png[offset + 4 : offset + 8].decode("ascii"))
        offset += 12 + length
    assert chunks == {"IHDR", "IDAT", "IEND"}
    with Image.open(io.BytesIO(png)) as back:
        assert back.mode == "RGB"
        assert np.array_equal(np.asarray(back), rgb)
