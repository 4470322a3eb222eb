"""Bounded fuzzing: random and mutated prompts through the policy, random and mutated image bytes
through ``moderation.intake.load_image``. Only ``UsageError`` may escape; nothing may hang."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from livingphoto.errors import UsageError
from moderation.intake import load_image
from moderation.policy import PromptPolicy

POLICY = PromptPolicy.load()
CORPUS = tomllib.loads(
    (Path(__file__).parent / "data" / "policy_corpus.toml").read_text(encoding="utf-8")
)
REFUSED = [(c, p) for c, prompts in CORPUS["refused"].items() for p in prompts]
PROMPTS = CORPUS["allowed"] + [p for _, p in REFUSED]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]
# Latin letters and their Cyrillic lookalikes
LOOKALIKES = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "x": "\u0445",
}

BOUNDED = settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def _encoded(fmt: str, mode: str = "RGB", **params: object) -> bytes:
    image = Image.new(mode, (72, 80), "red" if mode != "L" else 100)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


SEEDS = [
    _encoded("JPEG", quality=80),
    _encoded("PNG"),
    _encoded("PNG", mode="RGBA"),
    _encoded("WEBP"),
    _encoded("GIF"),
    _encoded("JPEG", mode="CMYK"),
]


def _check_prompt(prompt: str) -> None:
    try:
        verdict = POLICY.check(prompt)
    except UsageError as error:
        assert "too long" in str(error)
        return
    if verdict is not None:
        assert verdict.category in POLICY.categories
        assert verdict.message and verdict.suggestion


@BOUNDED
@given(st.text(max_size=300))
def test_random_prompts_never_crash(prompt: str) -> None:
    _check_prompt(prompt)


@BOUNDED
@given(
    st.sampled_from(PROMPTS),
    st.lists(
        st.tuples(st.integers(0, 400), st.text(max_size=3)),
        max_size=6,
    ),
)
def test_mutated_prompts_never_crash(prompt: str, inserts: list[tuple[int, str]]) -> None:
    for position, text in inserts:
        position = min(position, len(prompt))
        prompt = prompt[:position] + text + prompt[position:]
    _check_prompt(prompt)


@settings(max_examples=150, deadline=2000, derandomize=True)
@given(st.sampled_from(REFUSED), st.data())
def test_invisible_characters_homoglyphs_and_case_do_not_evade(
    case: tuple[str, str], data: st.DataObject
) -> None:
    category, prompt = case
    chars = []
    for char in prompt:
        if char in LOOKALIKES and data.draw(st.integers(0, 3)) == 0:
            char = LOOKALIKES[char]
        chars.append(char.upper() if data.draw(st.booleans()) else char)
        if char.isalpha() and data.draw(st.integers(0, 4)) == 0:
            chars.append(data.draw(st.sampled_from(INVISIBLE)))
    verdict = POLICY.check("".join(chars))
    assert verdict is not None and verdict.category == category


def _load(data: bytes) -> None:
    try:
        image = load_image(data, max_bytes=1_000_000, max_pixels=4_000_000)
    except UsageError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert image.rgb.ndim == 3 and image.rgb.shape[2] == 3


@pytest.mark.timeout(120)
@BOUNDED
@given(st.binary(max_size=4096))
def test_random_image_bytes_never_crash(data: bytes) -> None:
    _load(data)


@pytest.mark.timeout(120)
@BOUNDED
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
    st.one_of(st.none(), st.integers(0, 10_000)),
    st.binary(max_size=64),
)
def test_mutated_images_never_crash(
    seed: bytes, flips: list[tuple[int, int]], cut: int | None, tail: bytes
) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _load(bytes(data) + tail)
