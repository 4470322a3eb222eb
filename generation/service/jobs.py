"""The job model shared by the service, both queues and the workers: plain frozen values.

A ``JobTicket`` is everything a worker needs to run a job (it travels through Redis as JSON);
``WorkerEvent`` is everything a worker reports back (progress, and exactly one final event).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from livingphoto.errors import UsageError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class Adjust(StrEnum):
    REROLL = "reroll"  # same prompt, new seeds
    LESS = "less"  # the chosen take with 0.6x motion
    MORE = "more"  # the chosen take with 1.5x motion
    VARY = "vary"  # variations around the chosen take: new seeds, same motion scale


# Motion scale applied to the parent's for each adjustment.
ADJUST_SCALE = {Adjust.REROLL: 1.0, Adjust.LESS: 0.6, Adjust.MORE: 1.5, Adjust.VARY: 1.0}
MIN_MOTION_SCALE = 0.1
MAX_MOTION_SCALE = 4.0

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def new_job_id() -> str:
    return secrets.token_hex(16)


def is_job_id(value: str) -> bool:
    """True for a well-formed job id (32 lowercase hex digits): nothing else names a file."""
    return bool(_JOB_ID.fullmatch(value))


def check_job_id(value: str) -> str:
    if not is_job_id(value):
        raise UsageError("job id must be 32 hexadecimal digits")
    return value


@dataclass(frozen=True)
class RenderOptions:
    """The generation options of one job (maps onto ``generation.animator.AnimateOptions``)."""

    variations: int = 3
    seconds: float = 3.0
    fps: int = 24
    size: int = 512
    seed: int | None = None
    motion_scale: float = 1.0
    face: int | None = None  # which detected face to animate; None: the largest

    def to_json(self) -> dict[str, Any]:
        return {
            "variations": self.variations,
            "seconds": self.seconds,
            "fps": self.fps,
            "size": self.size,
            "seed": self.seed,
            "motion_scale": self.motion_scale,
            "face": self.face,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderOptions:
        seed = data.get("seed")
        return cls(
            variations=int(data["variations"]),
            seconds=float(data["seconds"]),
            fps=int(data["fps"]),
            size=int(data["size"]),
            seed=None if seed is None else int(seed),
            motion_scale=float(data.get("motion_scale", 1.0)),
            face=None if data.get("face") is None else int(data["face"]),
        )


@dataclass(frozen=True)
class JobTicket:
    """What a worker needs: paths are relative to the shared data directory."""

    job_id: str
    prompt: str
    options: RenderOptions
    input_path: str
    timeout_s: float
    # What the photo shows (``Subject.to_record``), found when the job was accepted; None when
    # unknown (the worker then searches the photo itself).
    subject: dict[str, Any] | None = None
    # The old-scan check of the photo (``DamageReport.to_record``), made when the job was
    # accepted; None when unknown (the worker then checks the photo itself).
    damage: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "job_id": self.job_id,
            "prompt": self.prompt,
            "options": self.options.to_json(),
            "input_path": self.input_path,
            "timeout_s": self.timeout_s,
        }
        if self.subject is not None:
            data["subject"] = self.subject
        if self.damage is not None:
            data["damage"] = self.damage
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobTicket:
        subject, damage = data.get("subject"), data.get("damage")
        return cls(
            job_id=check_job_id(str(data["job_id"])),
            prompt=str(data["prompt"]),
            options=RenderOptions.from_json(dict(data["options"])),
            input_path=str(data["input_path"]),
            timeout_s=float(data["timeout_s"]),
            subject=dict(subject) if isinstance(subject, dict) else None,
            damage=dict(damage) if isinstance(damage, dict) else None,
        )


@dataclass(frozen=True)
class VariationRecord:
    index: int
    path: str  # relative to the data directory
    seed: int
    rank: int
    scores: dict[str, float]
    combined: float
    flagged: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": self.path,
            "seed": self.seed,
            "rank": self.rank,
            "scores": self.scores,
            "combined": self.combined,
            "flagged": self.flagged,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VariationRecord:
        return cls(
            index=int(data["index"]),
            path=str(data["path"]),
            seed=int(data["seed"]),
            rank=int(data["rank"]),
            scores={str(k): float(v) for k, v in dict(data["scores"]).items()},
            combined=float(data["combined"]),
            flagged=bool(data["flagged"]),
        )


@dataclass(frozen=True)
class TakeRecord:
    """One take reported while its job still runs: encoded and scored, not yet ranked."""

    index: int
    path: str  # relative to the data directory
    seed: int
    scores: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "path": self.path, "seed": self.seed, "scores": self.scores}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TakeRecord:
        return cls(
            index=int(data["index"]),
            path=str(data["path"]),
            seed=int(data["seed"]),
            scores={str(k): float(v) for k, v in dict(data["scores"]).items()},
        )


@dataclass(frozen=True)
class RunResult:
    """The outcome of a successful run: clips live in ``run_dir`` (relative to the data dir)."""

    run_dir: str
    variations: tuple[VariationRecord, ...]
    generation_s: float
    warnings: tuple[str, ...] = ()
    motion: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": self.run_dir,
            "variations": [v.to_json() for v in self.variations],
            "generation_s": self.generation_s,
            "warnings": list(self.warnings),
            "motion": self.motion,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        return cls(
            run_dir=str(data["run_dir"]),
            variations=tuple(VariationRecord.from_json(v) for v in data["variations"]),
            generation_s=float(data["generation_s"]),
            warnings=tuple(str(w) for w in data.get("warnings", ())),
            motion=dict(data.get("motion", {})),
        )


class EventKind(StrEnum):
    STARTED = "started"
    PROGRESS = "progress"
    TAKE = "take"  # one take encoded and scored (``WorkerEvent.take``)
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (EventKind.DONE, EventKind.FAILED, EventKind.CANCELLED)


@dataclass(frozen=True)
class WorkerEvent:
    """One report from a worker about one job."""

    job_id: str
    kind: EventKind
    progress: float = 0.0
    stage: str = ""
    error: str = ""
    result: RunResult | None = None
    worker: str = ""
    delivery: int = 1
    take: TakeRecord | None = None

    def to_fields(self) -> dict[str, str]:
        """Flat string fields (a Redis stream entry)."""
        fields = {
            "job_id": self.job_id,
            "kind": self.kind.value,
            "progress": f"{self.progress:.4f}",
            "stage": self.stage,
            "error": self.error,
            "worker": self.worker,
            "delivery": str(self.delivery),
        }
        if self.result is not None:
            fields["result"] = json.dumps(self.result.to_json())
        if self.take is not None:
            fields["take"] = json.dumps(self.take.to_json())
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> WorkerEvent:
        raw = fields.get("result")
        take = fields.get("take")
        return cls(
            job_id=check_job_id(fields["job_id"]),
            kind=EventKind(fields["kind"]),
            progress=float(fields.get("progress", "0")),
            stage=fields.get("stage", ""),
            error=fields.get("error", ""),
            result=RunResult.from_json(json.loads(raw)) if raw else None,
            worker=fields.get("worker", ""),
            delivery=int(fields.get("delivery", "1")),
            take=TakeRecord.from_json(json.loads(take)) if take else None,
        )
