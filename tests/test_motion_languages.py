"""The motion parser in five languages, and negated motions as constraints (issues 13 and 17).

- a Spanish, Portuguese, French or German prompt gives the same ``MotionSpec`` (motions with
  intensities and directions, constraints, exclusions) as its English twin;
- a negated motion ("don't speak", "sin hablar", "kein Reden") becomes a constraint;
- the generative prompt and the warp backend honour the constraints.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_warp_backend import Portrait, portrait, render  # noqa: F401  (fixture)

from generation.backend import CancelToken, RenderRequest, no_progress
from generation.backends.warp import WarpBackend
from generation.motion import Constraint, MotionSpec, Primitive, affirmative_text, parse_motion
from generation.motion_lexicon import _ELISION, _POSTPOSED, LEXICON, MotionLexicon, _fold
from generation.prompting import build_prompt

TWINS: dict[str, dict[str, str]] = {
    "gentle blink": {
        "es": "parpadeo suave",
        "pt": "piscar suave",
        "fr": "clignement doux",
        "de": "sanftes Blinzeln",
    },
    "subtle blink, slight head tilt to the left, gentle breathing": {
        "es": "parpadeo sutil, ligera inclinación de cabeza a la izquierda, respiración suave",
        "pt": "piscar sutil, leve inclinação da cabeça para a esquerda, respiração suave",
        "fr": "clignement subtil, légère inclinaison de la tête à gauche, respiration douce",
        "de": "subtiles Blinzeln, leichte Kopfneigung nach links, sanfte Atmung",
    },
    "slow nod": {
        "es": "asiente lentamente",
        "pt": "acena com a cabeça devagar",
        "fr": "hoche la tête lentement",
        "de": "langsames Nicken",
    },
    "turn head to the right": {
        "es": "gira la cabeza a la derecha",
        "pt": "vira a cabeça para a direita",
        "fr": "tourne la tête à droite",
        "de": "dreht den Kopf nach rechts",
    },
    "soft smile": {
        "es": "sonrisa suave",
        "pt": "sorriso suave",
        "fr": "sourire doux",
        "de": "sanftes Lächeln",
    },
    "hair moving in the wind": {
        "es": "pelo moviéndose con el viento",
        "pt": "cabelo balançando ao vento",
        "fr": "cheveux qui bougent dans le vent",
        "de": "Haare bewegen sich im Wind",
    },
    "slow zoom in": {
        "es": "acercamiento lento",
        "pt": "aproximação lenta",
        "fr": "zoom avant lent",
        "de": "langsam heranzoomen",
    },
    "very subtle blink": {
        "es": "parpadeo muy sutil",
        "pt": "piscar muito sutil",
        "fr": "clignement très subtil",
        "de": "sehr subtiles Blinzeln",
    },
    "strong smile": {
        "es": "sonrisa fuerte",
        "pt": "sorriso forte",
        "fr": "sourire fort",
        "de": "starkes Lächeln",
    },
    "don't blink, smile": {
        "es": "no parpadees, sonríe",
        "pt": "não pisque, sorria",
        "fr": "ne cligne pas, souris",
        "de": "blinzle nicht, lächle",
    },
    "keep mouth closed, don't speak, soft smile": {
        "es": "boca cerrada, sin hablar, sonrisa suave",
        "pt": "boca fechada, sem falar, sorriso suave",
        "fr": "bouche fermée, sans parler, sourire doux",
        "de": "Mund geschlossen, kein Reden, sanftes Lächeln",
    },
    "no hand movement, gentle breathing": {
        "es": "sin mover las manos, respiración suave",
        "pt": "sem mexer as mãos, respiração suave",
        "fr": "sans bouger les mains, respiration douce",
        "de": "keine Handbewegung, sanfte Atmung",
    },
    "blink, head still": {
        "es": "parpadeo, cabeza quieta",
        "pt": "piscar, cabeça parada",
        "fr": "clignement, tête immobile",
        "de": "Blinzeln, Kopf ruhig",
    },
}
CASES = [(en, lang, text) for en, twins in TWINS.items() for lang, text in twins.items()]


def essence(spec: MotionSpec) -> tuple[object, ...]:
    motions = tuple((m.primitive, round(m.intensity, 3), m.direction) for m in spec.motions)
    return motions, spec.constraints, spec.excluded


@pytest.mark.parametrize(("english", "lang", "text"), CASES)
def test_a_prompt_makes_the_same_motion_as_its_english_twin(
    english: str, lang: str, text: str
) -> None:
    assert essence(parse_motion(text)) == essence(parse_motion(english)), lang


def test_parpadeo_suave_animates_a_blink() -> None:
    spec = parse_motion("parpadeo suave")
    assert [(m.primitive, m.intensity) for m in spec.motions] == [(Primitive.BLINK, 0.3)]
    assert not spec.warnings


def test_accents_and_case_do_not_matter() -> None:
    assert essence(parse_motion("PARPADÉO SUAVE")) == essence(parse_motion("parpadeo suave"))
    assert essence(parse_motion("LÄCHELN")) == essence(parse_motion("lacheln"))


def test_english_words_that_look_foreign_are_left_alone() -> None:
    lexicon = MotionLexicon()
    assert lexicon.to_english("the main character smiles") == "the main character smiles"
    assert lexicon.to_english("her son waves as if breathing") == "her son waves as if breathing"
    assert lexicon.to_english("don't blink") == "don't blink"


def _full_substitution(text: str) -> str:
    """``to_english`` without its shortcut: every text through the whole alternation."""
    lexicon = MotionLexicon()
    folded = _ELISION.sub(r"\1 ", _fold(text).replace("\u2019", "'"))
    folded = _POSTPOSED.sub(lambda m: f"{m.group(2)} {m.group(1)}", folded)
    replaced = lexicon._pattern.sub(lambda m: lexicon._meaning(m.group(0)), folded)
    return " ".join(replaced.split(" ")).replace("  ", " ")


@pytest.mark.parametrize(
    "text",
    [
        "cligne des yeux et respire doucement",
        "un léger sourire, une respiration douce, au coin des lèvres",
        "parpadeo suave de los ojos, una sonrisa del alma",
        "ein sanftes Blinzeln und eine leichte Kopfneigung zur Seite",
        "um piscar suave, uma respiração leve da boca",
    ],
)
def test_articles_and_small_words_are_not_reported_as_unknown(text: str) -> None:
    # "des", "une", "del", "ein", "uma": words every such prompt has, not motions it missed.
    small = {"un", "une", "una", "um", "uma", "ein", "eine", "de", "des", "del", "da", "au"}
    assert not small & set(parse_motion(text).unknown_words)
    assert parse_motion(text).motions


def test_the_lexicon_is_compiled_only_for_a_text_that_may_need_it() -> None:
    texts = [
        *(key.rstrip("*") + ending for key in LEXICON for ending in ("", "s", "ment doux")),
        *(f"Un {key.rstrip('*')}, und Ruhe" for key in LEXICON),
        *(twin for twins in TWINS.values() for twin in twins.values()),
        *TWINS,
        *NEGATED,
        "the main character smiles",
        "subtle blink, slight head tilt, gentle breathing",
    ]
    for text in texts:
        assert MotionLexicon().to_english(text) == _full_substitution(text), text
    english = MotionLexicon()
    english.to_english("subtle blink, slight head tilt, gentle breathing, then a big smile")
    assert "_pattern" not in vars(english)  # an English prompt compiles nothing
    spanish = MotionLexicon()
    assert spanish.to_english("parpadeo suave") == "blink gentle"
    assert "_pattern" in vars(spanish)


NEGATED = {
    "keep mouth closed, don't speak": Constraint.KEEP_MOUTH_CLOSED,
    "no talking, just a soft smile": Constraint.KEEP_MOUTH_CLOSED,
    "quiet, no chatter": Constraint.KEEP_MOUTH_CLOSED,
    "never speaking": Constraint.KEEP_MOUTH_CLOSED,
    "don't open the mouth to speak": Constraint.KEEP_MOUTH_CLOSED,
    "no lip-sync": Constraint.KEEP_MOUTH_CLOSED,
    "no hablar": Constraint.KEEP_MOUTH_CLOSED,
    "kein Reden": Constraint.KEEP_MOUTH_CLOSED,
    "sans parler": Constraint.KEEP_MOUTH_CLOSED,
    "sem falar": Constraint.KEEP_MOUTH_CLOSED,
    "don't move your hands, blink": Constraint.NO_HAND_MOVEMENT,
    "without moving the hands": Constraint.NO_HAND_MOVEMENT,
    "keep the head still, blink": Constraint.STILL_HEAD,
    "no head movement": Constraint.STILL_HEAD,
    "ne bouge pas la tête": Constraint.STILL_HEAD,
    "Kopf nicht bewegen": Constraint.STILL_HEAD,
    "não mexa a cabeça": Constraint.STILL_HEAD,
    "don't blink": Constraint.NO_BLINK,
    "eyes open, smile": Constraint.NO_BLINK,
    "no parpadees": Constraint.NO_BLINK,
}


@pytest.mark.parametrize("text", sorted(NEGATED))
def test_negated_motion_is_a_constraint(text: str) -> None:
    spec = parse_motion(text)
    assert NEGATED[text] in spec.constraints
    assert not any("lip-sync" in w for w in spec.warnings)  # a constraint, not a request


def test_long_constraint_names_are_the_same_constraints() -> None:
    assert Constraint.KEEP_MOUTH_CLOSED is Constraint.MOUTH_CLOSED
    assert Constraint.NO_HAND_MOVEMENT is Constraint.NO_HANDS
    assert parse_motion("no talking").to_json()["constraints"] == ["mouth_closed"]


def test_generative_prompt_honours_constraints_and_drops_negated_words() -> None:
    pair = build_prompt(parse_motion("no talking, just a soft smile, kein Kopfnicken, don't blink"))
    assert "talking" not in pair.prompt and "Kopf" not in pair.prompt
    assert "closed-mouth smile" in pair.prompt and "mouth closed" in pair.prompt
    assert "eyes open" in pair.prompt
    for avoided in ("talking", "lip movement", "blinking", "nodding"):
        assert avoided in pair.negative_prompt
    negatives = pair.negative_prompt.split(", ")
    assert len(negatives) == len(set(negatives))
    assert affirmative_text("no talking, just a soft smile") == "just a soft smile"


def test_warp_honours_constraints_given_without_exclusions(portrait: Portrait) -> None:  # noqa: F811
    spec = parse_motion("blink, head tilt")
    (free,) = render(portrait, "blink, head tilt", frames=12)
    constrained = replace(spec, constraints=frozenset({Constraint.NO_BLINK, Constraint.STILL_HEAD}))
    request = RenderRequest(
        image=portrait.image, spec=constrained, variations=1, frames=12, fps=24, seed=3,
        face=portrait.face,
    )  # fmt: skip
    (held,) = WarpBackend().render(request, no_progress, CancelToken())
    assert "head_tilt" in free.info["components"]
    assert "head_tilt" not in held.info["components"]
    assert free.info.get("blink_peak") is not None
    assert held.info.get("blink_peak") is None
