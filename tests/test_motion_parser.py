"""Motion prompt understanding: phrasings, intensities, directions, negations, limits, warnings."""

from __future__ import annotations

import pytest

from generation.motion import Constraint, MotionSpec, Primitive, parse_motion
from livingphoto.errors import UsageError

P = Primitive


def prims(spec: MotionSpec) -> set[Primitive]:
    return {m.primitive for m in spec.motions}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blinks", {P.BLINK}),
        ("blinking slowly", {P.BLINK}),
        ("eyes close", {P.BLINK}),
        ("she closes her eyes", {P.BLINK}),
        ("tilt her head", {P.HEAD_TILT}),
        ("head tilts to one side", {P.HEAD_TILT}),
        ("cocks his head", {P.HEAD_TILT}),
        ("looks left", {P.HEAD_TURN}),
        ("turns head slightly", {P.HEAD_TURN}),
        ("glances to the side", {P.HEAD_TURN}),
        ("nods", {P.NOD}),
        ("looks up", {P.NOD}),
        ("breathes", {P.BREATHING}),
        ("chest rising", {P.BREATHING}),
        ("gentle breathing", {P.BREATHING}),
        ("hair moving in the wind", {P.HAIR_SWAY}),
        ("a light breeze", {P.HAIR_SWAY}),
        ("dress flutters", {P.FABRIC_SWAY}),
        ("scarf sways", {P.FABRIC_SWAY}),
        ("smiles softly", {P.SMILE}),
        ("a small grin", {P.SMILE}),
        ("slow push in", {P.ZOOM}),
        ("zoom out", {P.ZOOM}),
        ("ken burns", {P.ZOOM, P.PAN}),
        ("pan left", {P.PAN}),
        ("parallax", {P.PARALLAX}),
        ("subtle blink, slight head tilt, gentle breathing", {P.BLINK, P.HEAD_TILT, P.BREATHING}),
        ("Blinks and smiles; hair blowing", {P.BLINK, P.SMILE, P.HAIR_SWAY}),
    ],
)
def test_phrasings(text: str, expected: set[Primitive]) -> None:
    assert prims(parse_motion(text)) == expected


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("very subtle blink", 0.15),
        ("barely blinks", 0.15),
        ("subtle blink", 0.3),
        ("slight blink", 0.3),
        ("gentle blink", 0.3),
        ("soft blink", 0.3),
        ("a small blink", 0.3),
        ("blink a bit", 0.3),
        ("natural blink", 0.5),
        ("blink", 0.5),
        ("strong blink", 0.8),
        ("big blink", 0.8),
        ("dramatic blink", 0.8),
        ("huge blink", 1.0),
    ],
)
def test_intensity_words(text: str, level: float) -> None:
    assert parse_motion(text).intensity(P.BLINK) == pytest.approx(level)


@pytest.mark.parametrize(
    ("text", "primitive", "direction"),
    [
        ("tilt head to the left", P.HEAD_TILT, "left"),
        ("looks right", P.HEAD_TURN, "right"),
        ("looks down", P.NOD, "down"),
        ("slow push in", P.ZOOM, "in"),
        ("pull back slowly", P.ZOOM, "out"),
        ("pan right", P.PAN, "right"),
    ],
)
def test_directions(text: str, primitive: Primitive, direction: str) -> None:
    spec = parse_motion(text)
    motion = next(m for m in spec.motions if m.primitive is primitive)
    assert motion.direction == direction


@pytest.mark.parametrize(
    ("text", "excluded"),
    [
        ("don't blink, breathe", P.BLINK),
        ("no blinking, gentle breathing", P.BLINK),
        ("breathing without smiling", P.SMILE),
        ("keep eyes open, breathe", P.BLINK),
        ("no zoom, blink", P.ZOOM),
        ("head still, blink", P.HEAD_TILT),
        ("never nod; smile a little", P.NOD),
    ],
)
def test_negations_exclude(text: str, excluded: Primitive) -> None:
    spec = parse_motion(text)
    assert excluded in spec.excluded
    assert excluded not in prims(spec)
    assert spec.motions  # the positive part survives


@pytest.mark.parametrize(
    ("text", "constraint"),
    [
        ("blink, keep face the same", Constraint.KEEP_IDENTITY),
        ("keep her face unchanged", Constraint.KEEP_IDENTITY),
        ("smile but no big smile", Constraint.NO_BIG_SMILE),
        ("keep mouth closed", Constraint.MOUTH_CLOSED),
        ("lips together, breathe", Constraint.MOUTH_CLOSED),
        ("no hand movement", Constraint.NO_HANDS),
        ("hands still, blink", Constraint.NO_HANDS),
        ("blink, background static", Constraint.STILL_BACKGROUND),
        ("no camera movement", Constraint.STILL_CAMERA),
    ],
)
def test_constraints(text: str, constraint: Constraint) -> None:
    assert constraint in parse_motion(text).constraints


def test_no_big_smile_caps_the_smile() -> None:
    spec = parse_motion("big smile, no big smile please")
    assert spec.intensity(P.SMILE) <= 0.3
    assert Constraint.NO_BIG_SMILE in spec.constraints


def test_still_camera_removes_camera_moves() -> None:
    spec = parse_motion("slow zoom in, parallax, no camera movement, blink")
    assert prims(spec) == {P.BLINK}


def test_several_large_motions_warn() -> None:
    spec = parse_motion("turn head and laugh")
    assert prims(spec) == {P.HEAD_TURN, P.SMILE}
    assert any("large motions" in w for w in spec.warnings)
    assert not parse_motion("subtle blink, slight head tilt").warnings


def test_speech_and_hands_warn() -> None:
    assert any("lip-sync" in w for w in parse_motion("make her say hello and blink").warnings)
    assert any("hand" in w for w in parse_motion("waves at the camera, blink").warnings)


def test_unknown_words_are_kept_in_order() -> None:
    spec = parse_motion("subtle blink, cinematic golden hour light, bokeh")
    assert prims(spec) == {P.BLINK}
    assert spec.unknown_words[:3] == ("cinematic", "golden", "hour")
    assert "bokeh" in spec.unknown_words
    assert "blink" not in spec.unknown_words


def test_nothing_recognised_gets_a_gentle_default_and_a_warning() -> None:
    spec = parse_motion("a portrait of my grandmother")
    assert prims(spec) == {P.BLINK, P.BREATHING}
    assert all(m.intensity <= 0.3 for m in spec.motions)
    assert any("no motion recognised" in w for w in spec.warnings)
    assert "grandmother" in spec.unknown_words


def test_default_respects_exclusions() -> None:
    spec = parse_motion("don't blink")
    assert prims(spec) == {P.BREATHING}


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_prompt_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="empty"):
        parse_motion(text)


def test_long_prompt_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="too long") as caught:
        parse_motion("blink " * 1000)
    assert "\n" not in str(caught.value)
    assert len(parse_motion("blink " + "x" * 490).text) <= 500


def test_json_and_scaling() -> None:
    spec = parse_motion("subtle blink, gentle breathing, no hand movement")
    data = spec.to_json()
    assert data["motions"][0] == {"primitive": "blink", "intensity": 0.3, "direction": None}
    assert data["constraints"] == ["no_hands"]
    more = spec.scaled(2.0)
    assert more.intensity(P.BLINK) == pytest.approx(0.6)
    assert spec.scaled(0.01).intensity(P.BLINK) == pytest.approx(0.05)


def test_curly_apostrophes_and_case() -> None:
    spec = parse_motion("DON\u2019T Blink, Breathe")
    assert P.BLINK in spec.excluded
    assert prims(spec) == {P.BREATHING}
