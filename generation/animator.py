"""The one path from photo bytes to ranked looping clips, used by the CLI, the service and workers.

CONTRACT (relied on by the service, workers and benchmarks):

    animator = Animator(backend)          # backend from generation.backends.make_backend(...)
    animator.setup()                      # once per process
    result = animator.animate(image_bytes, prompt, options, out_dir, progress, cancel)

``animate`` runs: intake (moderation.intake) -> subject detection / crop / resize -> motion
parse (scaled by ``options.motion_scale``) -> ``backend.render`` -> loop export (ffmpeg) ->
quality scores -> ranking, and writes into ``out_dir``: one clip per variation
(``variation-{k}.{format}``), ``contact-sheet.png`` and ``summary.json`` (``AnimateResult.to_json``).
It raises ``UsageError`` for unusable input, ``GenerationFailed``, or ``Cancelled``.
Moderation (consent, policy) is NOT done here: callers do it before (CLI, service).
The implementation is the foundation work (issue 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ClipFormat = Literal["mp4", "gif", "webp"]
CropMode = Literal["auto", "none"]


@dataclass(frozen=True)
class AnimateOptions:
    variations: int = 3
    seconds: float = 3.0
    fps: int = 24
    size: int = 512  # long side in pixels
    seed: int | None = None  # None: random; variation k uses seed + k - 1
    crop: CropMode = "auto"
    format: ClipFormat = "mp4"
    # 1.0 as parsed; <1 "less motion", >1 "more motion".
    motion_scale: float = 1.0


@dataclass(frozen=True)
class Scores:
    identity: float  # 1.0 = face geometry unchanged
    loop_seam: float  # 0.0 = seamless; ~1.0 = a seam as large as a typical frame step
    flicker: float  # 0.0 = no flicker
    motion: float  # how much it actually moves (0.0 = still)

    def to_json(self) -> dict[str, float]:
        return {
            "identity": round(self.identity, 4),
            "loop_seam": round(self.loop_seam, 4),
            "flicker": round(self.flicker, 4),
            "motion": round(self.motion, 4),
        }


@dataclass(frozen=True)
class VariationResult:
    index: int  # 1-based, in generation order
    path: Path
    seed: int
    rank: int  # 1 = best
    scores: Scores
    combined: float
    flagged: bool  # identity drifted past the threshold
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "path": str(self.path),
            "seed": self.seed,
            "rank": self.rank,
            "scores": self.scores.to_json(),
            "combined": round(self.combined, 4),
            "flagged": self.flagged,
            **({"info": self.info} if self.info else {}),
        }


@dataclass(frozen=True)
class AnimateResult:
    variations: tuple[VariationResult, ...]
    motion: dict[str, Any]
    warnings: tuple[str, ...]
    contact_sheet: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "variations": [v.to_json() for v in self.variations],
            "motion": self.motion,
            "warnings": list(self.warnings),
        }
