"""What text-conditioned and image-only models are told, from the parsed motion spec."""

from __future__ import annotations

from generation.motion import Constraint, Motion, MotionSpec, Primitive
from generation.prompting import (
    BASE_NEGATIVE,
    build_prompt,
    intensity_word,
    motion_phrase,
    svd_conditioning,
)


def spec(*motions: Motion, text: str = "", **kw: object) -> MotionSpec:
    return MotionSpec(text=text, motions=motions, **kw)  # type: ignore[arg-type]


def test_user_text_comes_first_then_motions_with_intensity_then_identity_phrases() -> None:
    pair = build_prompt(
        spec(
            Motion(Primitive.BLINK, 0.3),
            Motion(Primitive.HEAD_TILT, 0.15, direction="left"),
            Motion(Primitive.BREATHING, 0.5),
            text="  subtle blink, slight head tilt left , gentle breathing. ",
        )
    )
    assert pair.prompt.startswith("subtle blink, slight head tilt left , gentle breathing.")
    assert "a subtle natural eye blink" in pair.prompt
    assert "a very subtle head tilt to the left" in pair.prompt
    assert "gentle breathing, chest and shoulders rising and falling" in pair.prompt
    assert "same person, consistent face" in pair.prompt
    assert "natural subtle motion" in pair.prompt  # energy 0.475 < 0.5
    assert "static camera" in pair.prompt
    assert pair.prompt.endswith(".")
    assert "  " not in pair.prompt


def test_negative_prompt_guards_against_the_known_failures() -> None:
    negative = build_prompt(spec(Motion(Primitive.SMILE, 0.5))).negative_prompt
    for phrase in ("warping", "extra teeth", "melting face", "morphing face", "flicker"):
        assert phrase in negative
    assert negative.startswith(", ".join(BASE_NEGATIVE))
    assert "camera movement" in negative  # no camera motion asked for


def test_camera_motion_drops_static_camera_unless_constrained() -> None:
    zoom = build_prompt(spec(Motion(Primitive.ZOOM, 0.3, direction="in")))
    assert "a subtle slow camera zoom in" in zoom.prompt
    assert "static camera" not in zoom.prompt
    assert "camera movement" not in zoom.negative_prompt
    still = build_prompt(
        spec(Motion(Primitive.ZOOM, 0.3), constraints=frozenset({Constraint.STILL_CAMERA}))
    )
    assert "static camera" in still.prompt
    assert "camera movement" in still.negative_prompt


def test_constraints_and_exclusions_reach_both_prompts() -> None:
    pair = build_prompt(
        spec(
            Motion(Primitive.SMILE, 0.8),
            Motion(Primitive.NOD, 0.8),
            constraints=frozenset(
                {Constraint.MOUTH_CLOSED, Constraint.NO_HANDS, Constraint.KEEP_IDENTITY}
            ),
            excluded=frozenset({Primitive.NOD}),
        )
    )
    assert "a clear closed-mouth smile" in pair.prompt
    assert "nod" not in pair.prompt.replace("nodding", "")  # excluded: not asked for
    assert "mouth closed" in pair.prompt and "hands still" in pair.prompt
    assert "facial features unchanged" in pair.prompt
    assert "natural motion" in pair.prompt and "natural subtle motion" not in pair.prompt
    assert "nodding" in pair.negative_prompt
    assert "open mouth, talking" in pair.negative_prompt
    assert "hand movement" in pair.negative_prompt


def test_no_motion_asks_for_lifelike_stillness() -> None:
    pair = build_prompt(spec())
    assert "stays almost still" in pair.prompt
    assert pair.to_json() == {"prompt": pair.prompt, "negative_prompt": pair.negative_prompt}


def test_intensity_words_follow_the_parser_scale() -> None:
    assert [intensity_word(x) for x in (0.15, 0.3, 0.5, 0.8, 1.0)] == [
        "very subtle",
        "subtle",
        "gentle",
        "clear",
        "strong",
    ]
    every = [motion_phrase(Motion(p, 0.5, direction="right")) for p in Primitive]
    assert all(phrase and "gentle" in phrase for phrase in every)
    assert motion_phrase(Motion(Primitive.PAN, 0.5, direction="right")).endswith("to the right")


def test_svd_motion_bucket_and_noise_rise_with_energy() -> None:
    still = svd_conditioning(spec())
    subtle = svd_conditioning(spec(Motion(Primitive.BREATHING, 0.3)))
    lively = svd_conditioning(spec(Motion(Primitive.HEAD_TURN, 1.0), Motion(Primitive.SMILE, 1.0)))
    assert (still.motion_bucket_id, subtle.motion_bucket_id, lively.motion_bucket_id) == (
        16,
        40,
        176,
    )
    assert still.noise_aug_strength < subtle.noise_aug_strength < lively.noise_aug_strength <= 0.1
    assert lively.to_json() == {"motion_bucket_id": 176, "noise_aug_strength": 0.1}
