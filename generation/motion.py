"""Motion prompt understanding: free text -> ``MotionSpec``.

CONTRACT (types below are relied on by the warp and diffusers backends and the service):
``parse_motion(text) -> MotionSpec`` and ``MotionSpec.scaled(factor)`` for "less/more motion".
The parser itself is implemented in this module by the foundation work (issue 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Primitive(StrEnum):
    BLINK = "blink"
    HEAD_TILT = "head_tilt"
    HEAD_TURN = "head_turn"
    NOD = "nod"
    BREATHING = "breathing"
    HAIR_SWAY = "hair_sway"
    FABRIC_SWAY = "fabric_sway"
    SMILE = "smile"
    ZOOM = "zoom"
    PAN = "pan"
    PARALLAX = "parallax"


class Constraint(StrEnum):
    KEEP_IDENTITY = "keep_identity"  # "keep face the same"
    MOUTH_CLOSED = "mouth_closed"  # "keep mouth closed"
    NO_BIG_SMILE = "no_big_smile"  # "no big smile"
    NO_HANDS = "no_hands"  # "no hand movement"
    STILL_BACKGROUND = "still_background"  # "background still"
    STILL_CAMERA = "still_camera"  # "no camera movement"


# Primitives that count as "large" motions (faces melt when several are asked for at once).
LARGE_PRIMITIVES = frozenset({Primitive.HEAD_TURN, Primitive.NOD, Primitive.SMILE, Primitive.PAN})


@dataclass(frozen=True)
class Motion:
    primitive: Primitive
    # 0..1: 0.15 "very subtle", 0.3 "subtle/slight/gentle", 0.5 default, 0.8 "strong", 1.0 max.
    intensity: float
    # Optional direction word: "left", "right", "up", "down", "in", "out".
    direction: str | None = None

    @property
    def is_large(self) -> bool:
        return self.primitive in LARGE_PRIMITIVES and self.intensity >= 0.5


@dataclass(frozen=True)
class MotionSpec:
    text: str
    motions: tuple[Motion, ...]
    constraints: frozenset[Constraint] = frozenset()
    # Primitives the user explicitly excluded ("no smile", "don't nod").
    excluded: frozenset[Primitive] = frozenset()
    # Words the parser did not understand; kept for text-conditioned (diffusers) models.
    unknown_words: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def intensity(self, primitive: Primitive) -> float:
        """Intensity of ``primitive`` in this spec (0.0 when absent)."""
        return max((m.intensity for m in self.motions if m.primitive is primitive), default=0.0)

    @property
    def energy(self) -> float:
        """Overall amount of motion, 0..1 (used e.g. for SVD's motion bucket)."""
        if not self.motions:
            return 0.0
        return min(1.0, sum(m.intensity for m in self.motions) / 2.0)

    def scaled(self, factor: float) -> MotionSpec:
        """Less (<1) or more (>1) motion; intensities stay within 0.05..1."""
        motions = tuple(
            replace(m, intensity=min(1.0, max(0.05, m.intensity * factor))) for m in self.motions
        )
        return replace(self, motions=motions)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "motions": [
                {
                    "primitive": m.primitive.value,
                    "intensity": round(m.intensity, 3),
                    "direction": m.direction,
                }
                for m in self.motions
            ],
            "constraints": sorted(c.value for c in self.constraints),
            "excluded": sorted(p.value for p in self.excluded),
            "unknown_words": list(self.unknown_words),
            "energy": round(self.energy, 3),
        }
