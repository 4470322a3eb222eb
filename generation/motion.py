"""Motion prompt understanding: free text -> ``MotionSpec``.

CONTRACT (types below are relied on by the warp and diffusers backends and the service):
``parse_motion(text) -> MotionSpec`` and ``MotionSpec.scaled(factor)`` for "less/more motion".
The parser is rule-based and explainable: the prompt is lower-cased and accent-folded, the common
motion words of Spanish, German, French and Portuguese are read as English
(``generation.motion_lexicon``: "parpadeo suave" is "blink gentle"), the text is split into clauses
(at punctuation and "and/but/while/then/with/without"), each clause is matched against phrase
patterns for primitives, constraints, intensity words, directions and negations, and whatever is
left over is kept in ``unknown_words`` for text-conditioned models.

A negated motion is a constraint, never a request: "don't speak", "no lip-sync", "sin hablar",
"kein Reden" give ``MOUTH_CLOSED``; "no hand movement" ``NO_HANDS``; "keep the head still" or
"don't move the head" ``STILL_HEAD``; "don't blink" / "eyes open" ``NO_BLINK``. The backends and
the generative prompt (``generation.prompting``) honour every constraint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from generation.motion_lexicon import MotionLexicon
from livingphoto.errors import UsageError


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
    MOUTH_CLOSED = "mouth_closed"  # "keep mouth closed", "don't speak", "no lip-sync"
    KEEP_MOUTH_CLOSED = "mouth_closed"  # the same constraint, by its longer name
    NO_BIG_SMILE = "no_big_smile"  # "no big smile"
    NO_HANDS = "no_hands"  # "no hand movement"
    NO_HAND_MOVEMENT = "no_hands"  # the same constraint, by its longer name
    STILL_BACKGROUND = "still_background"  # "background still"
    STILL_CAMERA = "still_camera"  # "no camera movement"
    STILL_HEAD = "still_head"  # "keep the head still", "no head movement"
    NO_BLINK = "no_blink"  # "don't blink", "eyes open"


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


MAX_PROMPT_CHARS = 500
DEFAULT_INTENSITY = 0.5

# A prompt that names no motion gets this (the most natural-looking pair).
DEFAULT_MOTIONS = (
    Motion(Primitive.BLINK, 0.3),
    Motion(Primitive.BREATHING, 0.3),
)

# (pattern, primitives, default direction) — the first primitive is the one a positive mention adds;
# a negated mention excludes all of them.
_P = Primitive
_PRIMITIVE_PATTERNS: tuple[tuple[str, tuple[Primitive, ...], str | None], ...] = (
    (r"\bken ?burns\b", (_P.ZOOM, _P.PAN), "in"),
    (r"\b(blink\w*|wink\w*|eyelids?|eye ?lids?|lashes flutter\w*)\b", (_P.BLINK,), None),
    (r"\b(close[sd]?|closing|shut\w*) (her |his |their |the |both )?eyes\b", (_P.BLINK,), None),
    (r"\beyes (close[sd]?|closing|shut\w*|flutter\w*|open and close)\b", (_P.BLINK,), None),
    (r"\b(keep\w* )?(the |her |his |their )?eyes (wide )?open\b", (_P.BLINK,), "__neg__"),
    (
        r"\b(tilt\w*|cock\w*|cants?|lean\w*|tip\w*|incline\w*)\b( (her|his|their|the) head)?",
        (_P.HEAD_TILT,),
        None,
    ),
    (r"\bhead (tilt\w*|cock\w*|lean\w*)\b", (_P.HEAD_TILT,), None),
    (
        r"\b(turn\w*|rotat\w*|shak\w*|swivel\w*) (her |his |their |the )?head\b",
        (_P.HEAD_TURN,),
        None,
    ),
    (r"\bhead (turn\w*|rotat\w*|shak\w*)\b", (_P.HEAD_TURN,), None),
    (
        r"\b(look\w*|glanc\w*|gaz\w*) (to the |toward the |towards the )?(left|right|side|sideways|away|around)\b",
        (_P.HEAD_TURN,),
        None,
    ),
    (r"\b(glanc\w*|looks? around|looks? away)\b", (_P.HEAD_TURN,), None),
    (
        r"\bturn\w*( slightly| a bit| a little| gently| slowly)?( to the| toward the| towards the)? (left|right)\b",
        (_P.HEAD_TURN,),
        None,
    ),
    (r"\b(turn\w*)\b", (_P.HEAD_TURN,), None),
    (r"\b(nod\w*|head bob\w*|bob\w* (her |his |their |the )?head)\b", (_P.NOD,), None),
    (
        r"\b(look\w*|glanc\w*|gaz\w*|tilt\w* (her |his |their |the )?(head|chin)) (up|upward\w*|down|downward\w*)\b",
        (_P.NOD,),
        None,
    ),
    (r"\b(chin (up|down|lift\w*|rais\w*|lower\w*))\b", (_P.NOD,), None),
    (
        r"\b(mov\w*|motion) (of )?(her |his |their |the |your |a )?head\b|\bhead (mov\w*|motion)\b",
        (_P.HEAD_TILT, _P.HEAD_TURN, _P.NOD),
        None,
    ),
    (
        r"\bhead (still|steady|static|fixed)\b|\b(still|steady|static|fixed) head\b",
        (_P.HEAD_TILT, _P.HEAD_TURN, _P.NOD),
        "__neg__",
    ),
    (
        r"\b(breath\w*|inhal\w*|exhal\w*|sigh\w*|respir\w*|chest (ris\w*|rais\w*|mov\w*|heav\w*|expand\w*|lift\w*)|(ris\w*|heav\w*) chest|shoulders? (ris\w*|lift\w*|mov\w*))\b",
        (_P.BREATHING,),
        None,
    ),
    (
        r"\b(hair|locks|curls|ponytail|fringe|bangs)\b( \w+){0,4}? ?(mov\w*|blow\w*|flow\w*|sway\w*|wav\w*|flutter\w*|ripple\w*|stir\w*|in the (wind|breeze))?|\b(wind|breeze|windy|breezy)\b",
        (_P.HAIR_SWAY,),
        None,
    ),
    (
        r"\b(dress|shirt|blouse|cloth\w*|fabric|scarf|skirt|cape|veil|sleeves?|collar|jacket|coat|flag|curtains?|robe|gown)\b( \w+){0,3}? ?(flutter\w*|sway\w*|mov\w*|ripple\w*|wav\w*|blow\w*|billow\w*)?",
        (_P.FABRIC_SWAY,),
        None,
    ),
    (r"\b(smil\w*|grin\w*|smirk\w*|laugh\w*|beam\w*|chuckl\w*)\b", (_P.SMILE,), None),
    (
        r"\b(zoom\w*|push\w* in|dolly\w*( in| out)?|pull\w* (back|out|away)|mov\w* (in|closer)|closer|close ?up)\b",
        (_P.ZOOM,),
        None,
    ),
    (
        r"\b(pan|pans|panning|panned|truck\w*|slid\w*|drift\w*|track\w*( left| right)?)\b",
        (_P.PAN,),
        None,
    ),
    (r"\b(parallax|depth|3d|2\.5d|orbit\w*|dimensional)\b", (_P.PARALLAX,), None),
)

# (pattern, constraint, primitives the constraint excludes)
_CONSTRAINT_PATTERNS: tuple[tuple[str, Constraint, tuple[Primitive, ...]], ...] = (
    (
        r"\b(keep\w*|preserv\w*|maintain\w*|same|unchanged|don'?t change|do not change|no change to)\b"
        r"( \w+){0,3}? ?(face|identity|features|likeness|look|appearance)(( \w+){0,2}? (same|unchanged|intact|identical|as is))?\b"
        r"|\b(face|identity|features) (the same|same|unchanged|intact|identical|stays? the same)\b",
        Constraint.KEEP_IDENTITY,
        (),
    ),
    (
        r"\b(mouth|lips) (closed|shut|still|together|sealed)\b|\b(keep\w*|with) (the |her |his |their )?(mouth|lips) (closed|shut|still|together)\b"
        r"|\b(no|don'?t|do not|never|without) (open\w* (the |her |his |their )?mouth|mouth (open\w*|mov\w*)|talk\w*|speak\w*|teeth)\b|\bclosed (mouth|lips)\b"
        r"|\b(no|not|don'?t|dont|do not|doesn'?t|never|without|stop\w*|avoid\w*|zero|nor|neither)( \w+){0,4}? (talk\w*|speak\w*|speech|say\w*|said|lip ?-?sync\w*|lipsync\w*|lips? (sync\w*|mov\w*)|chat\w*|words?|sing\w*|whisper\w*|dialog\w*|dialogue|voice|mouth\w* (the )?words|lip movement)\b",
        Constraint.MOUTH_CLOSED,
        (),
    ),
    (
        r"\b(no|not a|not too|don'?t|do not|without|never|avoid\w*|nothing like a) (big|wide|broad|large|huge|toothy|open|exaggerated|much|too much|over the top)( \w+)? (smil\w*|grin\w*|laugh\w*)"
        r"|\b(no|without|don'?t|do not) (grin\w*|laugh\w*)\b|\b(smil\w*|grin\w*) (too much|too big|too wide)\b",
        Constraint.NO_BIG_SMILE,
        (),
    ),
    (
        r"\b(no|don'?t|do not|never|without|avoid\w*) (\w+ ){0,2}(hands?|fingers?|arms?)( \w+)?\b|\b(hands?|fingers?|arms?) (still|static|steady|fixed|don'?t move|do not move)\b",
        Constraint.NO_HANDS,
        (),
    ),
    (
        r"\b(background|backdrop|scene|surroundings)( \w+){0,2}? (still|static|steady|fixed|frozen|unchanged|the same)\b"
        r"|\b(still|static|steady|fixed|frozen) (background|backdrop)\b"
        r"|\b(no|without|don'?t|do not) (\w+ )?(background|backdrop) (\w+ )?(mov\w*|motion|change\w*)\b",
        Constraint.STILL_BACKGROUND,
        (),
    ),
    (
        r"\b(no|without|don'?t|do not|never) (\w+ )?camera (\w+ )?(mov\w*|motion)\b|\b(static|still|steady|fixed|locked|locked off|tripod) camera\b"
        r"|\bcamera (still|static|steady|fixed|locked)\b",
        Constraint.STILL_CAMERA,
        (_P.ZOOM, _P.PAN, _P.PARALLAX),
    ),
)

_INTENSITY_WORDS: tuple[tuple[str, float], ...] = (
    (
        r"\b(very|extremely|super|ultra) (strong\w*|big|large|dramatic\w*|intense\w*|wide\w*)\b|\b(huge|massive|extreme\w*|maximum|max|wild\w*|crazy)\b",
        1.0,
    ),
    (
        r"\b(very|extremely|super|really) (subtle\w*|slight\w*|gentle|gently|soft\w*|small|little|light\w*|faint\w*|slow\w*)\b|\b(barely|tiny|faint\w*|minimal\w*|micro|minute|imperceptibl\w*|hardly)\b|\ba tiny bit\b",
        0.15,
    ),
    (
        r"\b(subtl\w*|slight\w*|gentl\w*|soft\w*|small|little|light|lightly|calm\w*|slow\w*|quiet\w*|delicate\w*|mild\w*|relaxed|easy|a bit|a little|somewhat|shallow)\b",
        0.3,
    ),
    (r"\b(natural\w*|normal\w*|moderat\w*|medium|regular\w*|some)\b", 0.5),
    (
        r"\b(strong\w*|big|large|wide|deep\w*|dramatic\w*|intense\w*|lots|a lot|fast|quick\w*|exaggerat\w*|broad\w*|bold\w*|full\w*|energetic\w*|much|very)\b",
        0.8,
    ),
)

_DIRECTIONS: tuple[tuple[str, str], ...] = (
    (r"\b(left|leftward\w*|to the left)\b", "left"),
    (r"\b(right|rightward\w*|to the right)\b", "right"),
    (r"\b(up|upward\w*|lift\w*|rais\w*)\b", "up"),
    (r"\b(down|downward\w*|lower\w*)\b", "down"),
    (r"\b(in|push\w* in|closer|toward the camera|towards the camera|close ?up)\b", "in"),
    (r"\b(out|back|away|pull\w* out|pull\w* back)\b", "out"),
)

_DIRECTIONS_FOR: Mapping[Primitive, frozenset[str]] = MappingProxyType(
    {
        _P.HEAD_TILT: frozenset({"left", "right"}),
        _P.HEAD_TURN: frozenset({"left", "right"}),
        _P.NOD: frozenset({"up", "down"}),
        _P.ZOOM: frozenset({"in", "out"}),
        _P.PAN: frozenset({"left", "right", "up", "down"}),
        _P.PARALLAX: frozenset({"left", "right", "up", "down"}),
    }
)

_NEGATION = re.compile(
    r"\b(no|not|don'?t|dont|do not|doesn'?t|does not|never|without|avoid\w*|stop\w*|nothing|neither|nor|shouldn'?t|mustn'?t|isn'?t|aren'?t|zero|keep\w*)\b"
)
_KEEP_STILL = re.compile(r"\b(still|steady|static|frozen|fixed|the same|unchanged|closed|shut)\b")

_SPEECH = re.compile(
    r"\b(talk\w*|speak\w*|say\w*|said|sing\w*|lip ?-?sync\w*|lips? sync\w*|mouth\w* the words|chat\w*|whisper\w*|shout\w*|yell\w*)\b"
)
_HANDS = re.compile(r"\b(wav\w*|hands?|fingers?|arms?|clap\w*|point\w*|gestur\w*|thumbs? up)\b")

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "her",
        "his",
        "their",
        "its",
        "she",
        "he",
        "they",
        "them",
        "him",
        "it",
        "this",
        "that",
        "these",
        "those",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "and",
        "or",
        "but",
        "then",
        "while",
        "as",
        "is",
        "are",
        "be",
        "being",
        "been",
        "was",
        "were",
        "do",
        "does",
        "make",
        "makes",
        "made",
        "let",
        "lets",
        "have",
        "has",
        "just",
        "so",
        "very",
        "also",
        "too",
        "please",
        "some",
        "slightly",
        "gently",
        "softly",
        "subtly",
        "little",
        "bit",
        "very",
        "while",
        "into",
        "onto",
        "over",
        "under",
        "up",
        "down",
        "left",
        "right",
        "out",
        "back",
        "away",
        "photo",
        "picture",
        "image",
        "video",
        "clip",
        "person",
        "woman",
        "man",
        "girl",
        "boy",
        "lady",
        "guy",
        "head",
        "face",
        "eyes",
        "eye",
        "mouth",
        "lips",
        "chest",
        "slowly",
    ]
)

_CLAUSE_SPLIT = re.compile(r"[,.;:!?()\[\]\n]+|\b(?:and|but|while|then|plus|also|&)\b")
_WITHOUT = re.compile(r"\b(without|with no)\b")


def parse_motion(text: str) -> MotionSpec:
    """Parse a free-text motion prompt into a ``MotionSpec``.

    Raises ``UsageError`` (one line) for an empty prompt or one longer than 500 characters.
    """
    cleaned = " ".join(text.replace("\u2019", "'").replace("\u2018", "'").split())
    if not cleaned:
        raise UsageError(
            'the motion prompt is empty; describe a motion, e.g. "subtle blink, gentle breathing"'
        )
    if len(cleaned) > MAX_PROMPT_CHARS:
        raise UsageError(
            f"the motion prompt is too long ({len(cleaned)} characters); the limit is {MAX_PROMPT_CHARS}"
        )
    lowered = _LEXICON.to_english(cleaned)

    found: dict[Primitive, Motion] = {}
    excluded: set[Primitive] = set()
    constraints: set[Constraint] = set()
    unknown: list[str] = []
    warnings: list[str] = []

    for clause, negated_by_without in _clauses(lowered):
        consumed: list[tuple[int, int]] = []
        # "without moving the hands": the clause lost its "without" to the split; the
        # constraint patterns read it back in front
        lead = "without " if negated_by_without else ""
        for pattern, constraint, excludes in _CONSTRAINT_PATTERNS:
            for match in re.finditer(pattern, lead + clause):
                constraints.add(constraint)
                excluded.update(excludes)
                start, end = match.span()
                consumed.append((max(0, start - len(lead)), max(0, end - len(lead))))
        intensity = _intensity(clause)
        for pattern, primitives, direction in _PRIMITIVE_PATTERNS:
            for match in re.finditer(pattern, clause):
                if _overlaps(match.span(), consumed):
                    continue
                consumed.append(match.span())
                before = clause[: match.start()]
                negated = (
                    negated_by_without
                    or direction == "__neg__"
                    or _is_negated(before, clause[match.end() :])
                )
                if negated:
                    excluded.update(primitives)
                    continue
                for k, primitive in enumerate(primitives):
                    if k > 0 and primitives[0] is not _P.ZOOM:
                        break  # generic "moves her head": one primitive, the gentlest
                    gentle_default = len(primitives) > 1  # "ken burns", "moves her head"
                    fallback = 0.3 if gentle_default else DEFAULT_INTENSITY
                    level = intensity if intensity is not None else fallback
                    motion = Motion(
                        primitive,
                        level,
                        _direction(clause, primitive, direction),
                    )
                    previous = found.get(primitive)
                    if previous is None or motion.intensity > previous.intensity:
                        found[primitive] = motion
        for match in _INTENSITY_PATTERN.finditer(clause):
            consumed.append(match.span())
        for match in _NEGATION.finditer(clause):
            consumed.append(match.span())
        if (
            _SPEECH.search(clause)
            and Constraint.MOUTH_CLOSED not in constraints
            and not _is_negated(clause, "")
        ):
            warnings.append(
                "lip-sync and speech from one photo are not dependable; the clip will not show speech"
            )
        hands = _HANDS.search(clause)
        if (
            hands
            and Constraint.NO_HANDS not in constraints
            and not _is_negated(clause[: hands.start()], "")
        ):
            warnings.append("hands are not animated; hand and arm motion usually breaks first")
        unknown.extend(_leftover_words(clause, consumed))

    for primitive in excluded:
        found.pop(primitive, None)
    if Constraint.NO_BIG_SMILE in constraints and _P.SMILE in found:
        smile = found[_P.SMILE]
        found[_P.SMILE] = replace(smile, intensity=min(smile.intensity, 0.3))
    if Constraint.MOUTH_CLOSED in constraints and _P.SMILE in found:
        smile = found[_P.SMILE]
        found[_P.SMILE] = replace(smile, intensity=min(smile.intensity, 0.3))
    if Constraint.STILL_CAMERA in constraints:
        for primitive in (_P.ZOOM, _P.PAN, _P.PARALLAX):
            found.pop(primitive, None)
    # A negated motion is a constraint the backends honour, not only a missing motion.
    if _P.BLINK in excluded:
        constraints.add(Constraint.NO_BLINK)
    if excluded >= _HEAD_PRIMITIVES:
        constraints.add(Constraint.STILL_HEAD)

    motions = tuple(sorted(found.values(), key=lambda m: list(Primitive).index(m.primitive)))
    if not motions:
        motions = tuple(m for m in DEFAULT_MOTIONS if m.primitive not in excluded)
        warnings.append(
            "no motion recognised in the prompt; using "
            + (" + ".join(f"subtle {m.primitive.value}" for m in motions) or "a still frame")
        )
    large = [m for m in motions if m.is_large]
    if len(large) > 1:
        names = ", ".join(m.primitive.value.replace("_", " ") for m in large)
        warnings.append(
            f"several large motions at once ({names}) tend to distort faces; "
            "one subtle motion looks more natural"
        )
    return MotionSpec(
        text=cleaned,
        motions=motions,
        constraints=frozenset(constraints),
        excluded=frozenset(excluded),
        unknown_words=tuple(dict.fromkeys(unknown)),
        warnings=tuple(dict.fromkeys(warnings)),
    )


_HEAD_PRIMITIVES = frozenset({_P.HEAD_TILT, _P.HEAD_TURN, _P.NOD})
_LEXICON = MotionLexicon()  # immutable after construction
_INTENSITY_PATTERN = re.compile("|".join(f"(?:{p})" for p, _ in _INTENSITY_WORDS))


def affirmative_text(text: str) -> str:
    """``text`` without its negated clauses ("no talking, just a soft smile" -> "just a soft
    smile"): text-conditioned models read "no talking" as "talking", so what a negation asks for
    travels as constraints and the negative prompt instead (``generation.prompting``)."""
    kept: list[str] = []
    for part in re.split(r"(?<=[,.;:!?\n])", text):
        english = _LEXICON.to_english(part)
        if _NEGATION.search(english) or _WITHOUT.search(english):
            continue
        if part.strip(" ,.;:!?\n"):
            kept.append(part.strip())
    return " ".join(kept).strip(" ,;:")


def _clauses(text: str) -> list[tuple[str, bool]]:
    """Split into clauses; a clause that starts after "without"/"with no" is negated."""
    out: list[tuple[str, bool]] = []
    for part in _CLAUSE_SPLIT.split(text):
        if not part or not part.strip():
            continue
        pieces = _WITHOUT.split(part)
        # pieces: [before, "without", after, "without", after2 ...]
        head = pieces[0].strip()
        if head:
            out.append((head, False))
        for k in range(2, len(pieces), 2):
            tail = pieces[k].strip()
            if tail:
                out.append((tail, True))
    return out


def _intensity(clause: str) -> float | None:
    for pattern, level in _INTENSITY_WORDS:
        if re.search(pattern, clause):
            return level
    return None


def _direction(clause: str, primitive: Primitive, default: str | None) -> str | None:
    allowed = _DIRECTIONS_FOR.get(primitive, frozenset())
    for pattern, name in _DIRECTIONS:
        if name in allowed and re.search(pattern, clause):
            if (
                primitive is _P.ZOOM
                and name == "in"
                and not re.search(
                    r"\b(zoom\w* in|push\w* in|mov\w* in|dolly\w* in|closer|close ?up)\b", clause
                )
            ):
                continue
            return name
    if default in allowed:
        return default
    return None


def _is_negated(before: str, after: str) -> bool:
    """Whether a mention is negated: a negation word before it in the clause, or "... still"."""
    for match in _NEGATION.finditer(before):
        word = match.group(0)
        if word.startswith("keep"):
            if _KEEP_STILL.search(before[match.end() :] + " " + after):
                return True
            continue
        return True
    return False


def _overlaps(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in spans)


def _leftover_words(clause: str, consumed: list[tuple[int, int]]) -> list[str]:
    words: list[str] = []
    for match in re.finditer(r"[a-z0-9][a-z0-9'\-]*", clause):
        if _overlaps(match.span(), consumed):
            continue
        word = match.group(0)
        if word in _STOPWORDS or len(word) < 2:
            continue
        words.append(word)
    return words
