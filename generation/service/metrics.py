"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Counters and the histogram live here; gauges (queue depth, jobs by state) are read from the
store when ``/metrics`` is scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from generation.service.jobs import JobState
from generation.service.queue import QueueHealth

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
EMBEDDED = QueueHealth(backend="embedded")
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    def __init__(self) -> None:
        self._bucket_counts = [0] * len(GENERATION_BUCKETS)
        self._generation_count = 0
        self._generation_sum = 0.0
        self.refusals: Counter[str] = Counter()
        self.submitted = 0
        self.finished: Counter[str] = Counter()

    def observe_generation(self, seconds: float) -> None:
        self._generation_count += 1
        self._generation_sum += seconds
        for i, bound in enumerate(GENERATION_BUCKETS):
            if seconds <= bound:
                self._bucket_counts[i] += 1

    def refused(self, category: str) -> None:
        self.refusals[category] += 1

    @property
    def mean_generation_s(self) -> float | None:
        if not self._generation_count:
            return None
        return self._generation_sum / self._generation_count

    def render(
        self,
        queue_depth: int,
        jobs_by_state: Mapping[JobState, int],
        queue: QueueHealth = EMBEDDED,
    ) -> str:
        """The exposition text; ``queue`` is the transport's health (``JobQueue.health()``)."""
        lines = [
            "# HELP livingphoto_queue_depth Jobs waiting for a worker.",
            "# TYPE livingphoto_queue_depth gauge",
            f"livingphoto_queue_depth {queue_depth}",
            "# HELP livingphoto_jobs Jobs in the store by state.",
            "# TYPE livingphoto_jobs gauge",
        ]
        lines += [
            f'livingphoto_jobs{{state="{state.value}"}} {jobs_by_state.get(state, 0)}'
            for state in JobState
        ]
        lines += [
            "# HELP livingphoto_jobs_submitted_total Jobs accepted since start.",
            "# TYPE livingphoto_jobs_submitted_total counter",
            f"livingphoto_jobs_submitted_total {self.submitted}",
            "# HELP livingphoto_jobs_finished_total Jobs that reached a final state since start.",
            "# TYPE livingphoto_jobs_finished_total counter",
        ]
        lines += [
            f'livingphoto_jobs_finished_total{{state="{_label(state)}"}} {count}'
            for state, count in sorted(self.finished.items())
        ]
        lines += [
            "# HELP livingphoto_generation_seconds Time spent generating one job.",
            "# TYPE livingphoto_generation_seconds histogram",
        ]
        lines += [
            f'livingphoto_generation_seconds_bucket{{le="{bound:g}"}} {count}'
            for bound, count in zip(GENERATION_BUCKETS, self._bucket_counts, strict=True)
        ]
        lines += [
            f'livingphoto_generation_seconds_bucket{{le="+Inf"}} {self._generation_count}',
            f"livingphoto_generation_seconds_sum {self._generation_sum:.6f}",
            f"livingphoto_generation_seconds_count {self._generation_count}",
            "# HELP livingphoto_refusals_total Requests or outputs refused, by category.",
            "# TYPE livingphoto_refusals_total counter",
        ]
        lines += [
            f'livingphoto_refusals_total{{category="{_label(category)}"}} {count}'
            for category, count in sorted(self.refusals.items())
        ]
        lines += _queue_lines(queue)
        return "\n".join(lines) + "\n"


def _queue_lines(queue: QueueHealth) -> list[str]:
    backend = _label(queue.backend)
    return [
        "# HELP livingphoto_queue_backend_up 1 while the queue's transport answers, else 0.",
        "# TYPE livingphoto_queue_backend_up gauge",
        f'livingphoto_queue_backend_up{{backend="{backend}"}} {int(queue.up)}',
        "# HELP livingphoto_queue_backend_down_seconds How long the transport has not answered.",
        "# TYPE livingphoto_queue_backend_down_seconds gauge",
        f'livingphoto_queue_backend_down_seconds{{backend="{backend}"}} {queue.down_for_s:.3f}',
        "# HELP livingphoto_queue_backend_outages_total Times the transport stopped answering.",
        "# TYPE livingphoto_queue_backend_outages_total counter",
        f'livingphoto_queue_backend_outages_total{{backend="{backend}"}} {queue.outages}',
        "# HELP livingphoto_queue_resets_total Times the transport was found to have lost its data.",
        "# TYPE livingphoto_queue_resets_total counter",
        f'livingphoto_queue_resets_total{{backend="{backend}"}} {queue.resets}',
        "# HELP livingphoto_queue_jobs_resent_total Handed-over jobs sent again after a loss.",
        "# TYPE livingphoto_queue_jobs_resent_total counter",
        f'livingphoto_queue_jobs_resent_total{{backend="{backend}"}} {queue.resent}',
    ]


def _label(value: str) -> str:
    """Escape a label value (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
