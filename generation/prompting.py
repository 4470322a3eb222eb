"""What a generative model is told: the user's motion text augmented from the parsed ``MotionSpec``.

Text-conditioned models (LTX-Video, Wan) receive ``build_prompt(spec)``: the user's own words (less
the negated clauses, which such models read as requests: they travel as constraints), then
one phrase per parsed motion with its intensity ("a subtle head tilt to the left"), then the
identity-keeping phrases the spec implies ("same person, consistent face, ..., static camera"),
and a negative prompt against the known failure modes of photo animation (warping, extra teeth,
melting or morphing faces, flicker) plus whatever the user excluded. Image-only models (Stable
Video Diffusion) receive ``svd_conditioning(spec)``: the spec's energy mapped to SVD's motion bucket
and noise-augmentation strength. Both are reported back with every take so users see exactly what
was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generation.motion import Constraint, Motion, MotionSpec, Primitive, affirmative_text

# The failure modes users report first (DESIGN.md section 0): always in the negative prompt.
BASE_NEGATIVE = (
    "warping",
    "distorted face",
    "melting face",
    "morphing face",
    "changing identity",
    "different person",
    "extra teeth",
    "deformed teeth",
    "deformed hands",
    "extra fingers",
    "flicker",
    "jitter",
    "blurry",
    "low quality",
)

_CAMERA_PRIMITIVES = frozenset({Primitive.ZOOM, Primitive.PAN, Primitive.PARALLAX})

# What to avoid when the user excluded a primitive ("no smile", "don't nod").
_EXCLUDED_NEGATIVE: dict[Primitive, str] = {
    Primitive.BLINK: "blinking",
    Primitive.HEAD_TILT: "head tilting",
    Primitive.HEAD_TURN: "head turning",
    Primitive.NOD: "nodding",
    Primitive.BREATHING: "heavy breathing",
    Primitive.HAIR_SWAY: "moving hair",
    Primitive.FABRIC_SWAY: "moving clothes",
    Primitive.SMILE: "smiling",
    Primitive.ZOOM: "zooming",
    Primitive.PAN: "camera pan",
    Primitive.PARALLAX: "parallax",
}

_CONSTRAINT_POSITIVE: dict[Constraint, str] = {
    Constraint.KEEP_IDENTITY: "facial features unchanged",
    Constraint.MOUTH_CLOSED: "mouth closed",
    Constraint.NO_BIG_SMILE: "relaxed mouth",
    Constraint.NO_HANDS: "hands still",
    Constraint.STILL_BACKGROUND: "still background",
    Constraint.STILL_HEAD: "head held still",
    Constraint.NO_BLINK: "eyes open",
}

_CONSTRAINT_NEGATIVE: dict[Constraint, str] = {
    Constraint.MOUTH_CLOSED: "open mouth, talking, lip movement",
    Constraint.NO_BIG_SMILE: "big smile, laughing",
    Constraint.NO_HANDS: "hand movement",
    Constraint.STILL_BACKGROUND: "moving background",
    Constraint.STILL_CAMERA: "camera movement",
    Constraint.STILL_HEAD: "head movement",
    Constraint.NO_BLINK: "blinking",
}


@dataclass(frozen=True)
class PromptPair:
    prompt: str
    negative_prompt: str

    def to_json(self) -> dict[str, str]:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt}


@dataclass(frozen=True)
class SvdConditioning:
    """Stable Video Diffusion's motion controls (it takes no text)."""

    motion_bucket_id: int  # 1..255; SVD's default 127 is a lot of motion for a portrait
    noise_aug_strength: float  # noise added to the conditioning image; more noise, more motion

    def to_json(self) -> dict[str, Any]:
        return {
            "motion_bucket_id": self.motion_bucket_id,
            "noise_aug_strength": round(self.noise_aug_strength, 4),
        }


def intensity_word(intensity: float) -> str:
    """An adverb-like word for a 0..1 intensity, matching the parser's scale."""
    if intensity <= 0.2:
        return "very subtle"
    if intensity <= 0.4:
        return "subtle"
    if intensity <= 0.65:
        return "gentle"
    if intensity <= 0.9:
        return "clear"
    return "strong"


def motion_phrase(motion: Motion, constraints: frozenset[Constraint] = frozenset()) -> str:
    """One motion as a short phrase, e.g. ``"a subtle head tilt to the left"``."""
    word = intensity_word(motion.intensity)
    direction = motion.direction
    to_dir = f" to the {direction}" if direction in {"left", "right"} else ""
    up_down = f" {direction}" if direction in {"up", "down"} else ""
    match motion.primitive:
        case Primitive.BLINK:
            return f"a {word} natural eye blink"
        case Primitive.HEAD_TILT:
            return f"a {word} head tilt{to_dir}"
        case Primitive.HEAD_TURN:
            return f"a {word} head turn{to_dir}"
        case Primitive.NOD:
            return f"a {word} nod{up_down}"
        case Primitive.BREATHING:
            return f"{word} breathing, chest and shoulders rising and falling"
        case Primitive.HAIR_SWAY:
            return f"a {word} hair sway in a light breeze"
        case Primitive.FABRIC_SWAY:
            return f"clothing fabric rippling in a {word} breeze"
        case Primitive.SMILE:
            if Constraint.NO_BIG_SMILE in constraints or Constraint.MOUTH_CLOSED in constraints:
                return f"a {word} closed-mouth smile"
            return f"a {word} smile"
        case Primitive.ZOOM:
            way = "out" if direction == "out" else "in"
            return f"a {word} slow camera zoom {way}"
        case Primitive.PAN:
            return f"a {word} slow camera pan{to_dir}"
        case Primitive.PARALLAX:
            return f"{word} parallax depth motion"
    return f"{word} {motion.primitive.value.replace('_', ' ')}"


def _clean(text: str) -> str:
    return " ".join(text.split()).strip().rstrip(".")


def build_prompt(spec: MotionSpec) -> PromptPair:
    """The prompt and negative prompt sent to a text-conditioned video model for ``spec``."""
    motions = [m for m in spec.motions if m.primitive not in spec.excluded]
    parts: list[str] = []
    user_text = _clean(affirmative_text(spec.text))
    if user_text:
        parts.append(user_text)
    if motions:
        phrases = [motion_phrase(m, spec.constraints) for m in motions]
        parts.append("The person in the photo shows " + ", ".join(phrases))
    else:
        parts.append("The person in the photo stays almost still, with lifelike micro-motion")

    keep = ["same person", "consistent face"]
    keep.extend(
        _CONSTRAINT_POSITIVE[c]
        for c in sorted(spec.constraints, key=lambda c: c.value)
        if c in _CONSTRAINT_POSITIVE
    )
    keep.append("natural subtle motion" if spec.energy < 0.5 else "natural motion")
    has_camera_motion = any(m.primitive in _CAMERA_PRIMITIVES for m in motions)
    if Constraint.STILL_CAMERA in spec.constraints or not has_camera_motion:
        keep.append("static camera")
    keep.extend(["seamless loop", "realistic", "high quality"])
    parts.append(", ".join(keep))
    prompt = ". ".join(parts) + "."

    negative = list(BASE_NEGATIVE)
    negative.extend(
        _CONSTRAINT_NEGATIVE[c]
        for c in sorted(spec.constraints, key=lambda c: c.value)
        if c in _CONSTRAINT_NEGATIVE
    )
    if not has_camera_motion and Constraint.STILL_CAMERA not in spec.constraints:
        negative.append("camera movement")
    negative.extend(_EXCLUDED_NEGATIVE[p] for p in sorted(spec.excluded, key=lambda p: p.value))
    unique = ", ".join(dict.fromkeys(", ".join(negative).split(", ")))
    return PromptPair(prompt=prompt, negative_prompt=unique)


def svd_conditioning(spec: MotionSpec) -> SvdConditioning:
    """Map the spec's energy (0..1) to SVD's motion bucket and noise-augmentation strength.

    A still portrait asks for little motion: energy 0 gives bucket 16, energy 0.3 (one subtle
    motion) about 64, energy 1 gives 176; noise augmentation rises from 0.02 to 0.1 alongside.
    """
    energy = min(1.0, max(0.0, spec.energy))
    bucket = round(16 + 160 * energy)
    return SvdConditioning(
        motion_bucket_id=min(255, max(1, bucket)), noise_aug_strength=0.02 + 0.08 * energy
    )
