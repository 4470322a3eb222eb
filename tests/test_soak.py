"""The short soak of ``benchmarks/soak.py``: 250 jobs through the service, two
Redis workers and a private ``redis-server``, with one fault of each kind (a worker killed with
``kill -9``, the service killed and started again, Redis killed and started again empty)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import soak


@pytest.mark.slow
def test_short_soak_survives_a_worker_kill_a_service_restart_and_a_redis_loss(
    tmp_path: Path,
) -> None:
    # 250 jobs: on a fast machine 150 ran in 13 s, too short for the restarted service and the
    # killed worker to be measured after their warm-up (the RSS check needs every role).
    config = soak.SoakConfig(
        jobs=250, clients=12, worker_kills=1, redis_down_s=1.0, max_seconds=240.0, seed=7
    )
    result = soak.run(config, tmp_path)
    assert result.ok, result.report()
    assert sorted(f.kind for f in result.faults) == [
        "redis loss",
        "service restart",
        "worker kill -9",
    ]
    assert all(f.recovery_s < 60 for f in result.faults), result.report()
    assert result.jobs == config.jobs and result.jobs_per_s > 0
