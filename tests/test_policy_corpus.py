"""The prompt policy: the table-driven corpus (tests/data/policy_corpus.toml), normalisation and
bad policy files."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from livingphoto.errors import PolicyRefusal, UsageError
from moderation.config import ModerationSettings
from moderation.normalize import base, variants
from moderation.policy import DEFAULT_POLICY_FILE, PromptPolicy

CORPUS = tomllib.loads(
    (Path(__file__).parent / "data" / "policy_corpus.toml").read_text(encoding="utf-8")
)
ALLOWED: list[str] = CORPUS["allowed"]
REFUSED: list[tuple[str, str]] = [
    (category, prompt) for category, prompts in CORPUS["refused"].items() for prompt in prompts
]


@pytest.fixture(scope="module")
def policy() -> PromptPolicy:
    return PromptPolicy.load()


def test_corpus_is_large_and_covers_every_category(policy: PromptPolicy) -> None:
    assert len(ALLOWED) + len(REFUSED) >= 150
    assert len(ALLOWED) >= 60
    assert {category for category, _ in REFUSED} == set(policy.categories)


def test_no_false_refusals(policy: PromptPolicy) -> None:
    refused = {p: v.category for p in ALLOWED if (v := policy.check(p)) is not None}
    assert refused == {}


@pytest.mark.parametrize(("category", "prompt"), REFUSED)
def test_refused_with_the_right_category(policy: PromptPolicy, category: str, prompt: str) -> None:
    verdict = policy.check(prompt)
    assert verdict is not None, f"{prompt!r} was allowed"
    assert verdict.category == category
    assert verdict.rule


def test_refusal_names_the_category_and_suggests_something(policy: PromptPolicy) -> None:
    with pytest.raises(PolicyRefusal) as caught:
        policy.enforce("take off her shirt")
    error = caught.value
    assert error.category == "sexual"
    assert error.rule == "undressing_take_off"
    assert "sexual" in str(error)
    assert error.suggestion.startswith("You can ask for")
    assert error.suggestion in str(error)
    assert "\n" not in str(error)
    assert error.http_status == 422 and error.exit_code == 3


def test_minor_plus_sexual_is_sexual_minors_but_minor_alone_passes(policy: PromptPolicy) -> None:
    assert policy.check("the child smiles") is None
    verdict = policy.check("the child takes off her shirt")
    assert verdict is not None and verdict.category == "sexual_minors"


def test_unless_spares_only_its_own_words(policy: PromptPolicy) -> None:
    assert policy.check("nude lipstick") is None
    verdict = policy.check("nude lipstick and a nude body")
    assert verdict is not None and verdict.rule == "nude"


def test_prompt_too_long_is_a_usage_error() -> None:
    policy = PromptPolicy.load(max_prompt_chars=20)
    with pytest.raises(UsageError, match="too long"):
        policy.check("a" * 21)
    assert policy.check("a" * 20) is None


def test_empty_prompt_passes(policy: PromptPolicy) -> None:
    assert policy.check("") is None
    assert policy.check(" \u200b\n") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("TAKE OFF", "take off"),
        ("ｎｕｄｅ", "nude"),
        ("nu\u200bde", "nude"),
        ("nud\u0435", "nude"),  # Cyrillic e inside a Latin word
        ("ΝUDE", "nude"),  # Greek capital Nu
        ("sh1rt", "shirt"),
        ("$ex", "sex"),
        ("n.u.d.e", "nude"),
        ("n u d e", "nude"),
        ("s-e-x", "sex"),
        ("nuuuuude", "nude"),
        ("desnúdate", "desnudate"),
        ("n\u0338u\u0338d\u0338e\u0338", "nude"),  # combining overlays
        ("nu\x00de", "nude"),  # control character
    ],
)
def test_normalisation_undoes_evasion(raw: str, expected: str) -> None:
    assert expected in variants(raw)


def test_genuine_cyrillic_words_stay_cyrillic() -> None:
    assert variants("раздень")[0] == "раздень"
    assert base("Привет, мир!") == "привет мир"


def test_numbers_are_not_read_as_leetspeak() -> None:
    assert all("e seconds" not in v for v in variants("3 seconds"))


def test_settings_point_at_another_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'order = ["cats"]\n[terms]\npet = ["cat", "kitten*"]\n'
        '[categories.cats]\nlabel = "cats"\nmessage = "No cats."\nsuggestion = "Ask for dogs."\n'
        '[[categories.cats.rules]]\nid = "cat"\nany = ["{pet}"]\n',
        encoding="utf-8",
    )
    settings = ModerationSettings.from_env({"LIVINGPHOTO_POLICY_FILE": str(path)})
    policy = PromptPolicy.from_settings(settings)
    verdict = policy.check("the k1ttens play")
    assert verdict is not None and verdict.category == "cats"
    assert policy.check("take off her shirt") is None


BAD_POLICIES = {
    "missing": None,
    "not-toml": "order = [",
    "no-order": '[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n',
    "unknown-term": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["{nope}"]\n'
    ),
    "no-message": (
        'order=["a"]\n[categories.a]\nlabel="a"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["x"]\n'
    ),
    "bad-gap": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["~2 x"]\n'
    ),
    "bad-regex": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["re:(unclosed"]\n'
    ),
    "unknown-key": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["x"]\nmaybe=["y"]\n'
    ),
    "unknown-reference": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nall=["@b"]\n'
    ),
    "no-patterns": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\n'
    ),
    "punctuation-in-word": (
        'order=["a"]\n[categories.a]\nlabel="a"\nmessage="m"\nsuggestion="s"\n'
        '[[categories.a.rules]]\nid="r"\nany=["x(y)"]\n'
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_POLICIES))
def test_bad_policy_file_is_one_line_usage_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "policy.toml"
    text = BAD_POLICIES[name]
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        PromptPolicy.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message


def test_default_policy_file_is_the_packaged_one() -> None:
    assert DEFAULT_POLICY_FILE.name == "policy.toml"
    assert PromptPolicy.load().source == DEFAULT_POLICY_FILE
