"""Negation in the prompt policy, both ways (issue 13 part 1), and its cheap start-up (issue 14).

Bug classes, each a test below, each fed from tests/data/policy_corpus.toml in six languages:
- negated motion refused: "keep mouth closed, don't speak" must pass;
- negation unlocks a forbidden state: "not wearing a thing" must stay refused;
- negation scope runs past its clause: "no smiling, make him say hello" must stay refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from livingphoto.errors import UsageError
from moderation.negation import NegationScope
from moderation.policy import PromptPolicy

CORPUS = tomllib.loads(
    (Path(__file__).parent / "data" / "policy_corpus.toml").read_text(encoding="utf-8")
)


def _cases(table: str) -> list[tuple[str, str]]:
    return [(lang, prompt) for lang, prompts in CORPUS[table].items() for prompt in prompts]


@pytest.fixture(scope="module")
def policy() -> PromptPolicy:
    return PromptPolicy.load()


def test_every_policy_language_is_covered_both_ways() -> None:
    languages = {"en", "es", "pt", "fr", "de", "ru"}
    for table in ("negated_motion", "negated_clothing", "speech_after_negation"):
        assert set(CORPUS[table]) == languages, table


@pytest.mark.parametrize(("lang", "prompt"), _cases("negated_motion"))
def test_negated_motion_refused_bug_negation_is_a_constraint(
    policy: PromptPolicy, lang: str, prompt: str
) -> None:
    verdict = policy.check(prompt)
    assert verdict is None, f"{lang}: {prompt!r} refused as {verdict}"


@pytest.mark.parametrize(("lang", "prompt"), _cases("negated_clothing"))
def test_negation_unlocks_forbidden_state_bug_stays_refused(
    policy: PromptPolicy, lang: str, prompt: str
) -> None:
    verdict = policy.check(prompt)
    assert verdict is not None, f"{lang}: {prompt!r} was allowed"
    assert verdict.category == "sexual"


@pytest.mark.parametrize(("lang", "prompt"), _cases("speech_after_negation"))
def test_negation_scope_runs_past_clause_bug_request_stays_refused(
    policy: PromptPolicy, lang: str, prompt: str
) -> None:
    verdict = policy.check(prompt)
    assert verdict is not None, f"{lang}: {prompt!r} was allowed"
    assert verdict.category == "speech_impersonation"


@pytest.mark.parametrize("prompt", CORPUS["negation_lookalikes"]["allowed"])
def test_negation_near_clothing_lookalikes_pass(policy: PromptPolicy, prompt: str) -> None:
    assert policy.check(prompt) is None


def test_a_politician_with_negated_speech_is_not_a_deepfake(policy: PromptPolicy) -> None:
    # politician_speech refers to @speech_impersonation: the reference honours negation too
    assert policy.check("the president smiles, no talking") is None
    verdict = policy.check("the president smiles and talks")
    assert verdict is not None and verdict.category == "political_deepfake"


def test_negation_cannot_cancel_nudity_even_next_to_speech(policy: PromptPolicy) -> None:
    verdict = policy.check("don't speak, don't undress, nude")
    assert verdict is not None and verdict.category == "sexual"


def test_scope_marks_only_the_clause_after_the_cue(policy: PromptPolicy) -> None:
    assert policy.negation is not None
    marked = policy.negation.negated_words("smile, don't speak, then talk")
    assert marked == [
        ("smile", False), ("don", False), ("t", False), ("speak", True),
        ("then", False), ("talk", False),
    ]  # fmt: skip


def test_backward_negation_covers_the_verb_before_it(policy: PromptPolicy) -> None:
    assert policy.negation is not None
    assert ("sprich", True) in policy.negation.negated_words("sprich nicht")
    assert ("parle", True) in policy.negation.negated_words("parle pas")


def test_strip_keeps_evasion_spellings_outside_the_scope(policy: PromptPolicy) -> None:
    assert policy.negation is not None
    assert (
        policy.negation.without_negated("no smiling, make him s.p.e.a.k") == "no make him s.p.e.a.k"
    )
    verdict = policy.check("no smiling, make him s.p.e.a.k")
    assert verdict is not None and verdict.category == "speech_impersonation"


def test_policy_without_negation_table_refuses_negated_speech(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'order = ["speech"]\n[categories.speech]\nlabel = "s"\nmessage = "No."\n'
        'suggestion = "Smile."\n[[categories.speech.rules]]\nid = "say"\nany = ["speak"]\n',
        encoding="utf-8",
    )
    policy = PromptPolicy.load(path)
    assert policy.negation is None
    assert policy.check("don't speak") is not None


BAD_NEGATION = {
    "not-a-table": "negation = 3\n",
    "unknown-key": '[negation]\ncues = ["no"]\nmaybe = ["x"]\n',
    "no-cues": '[negation]\ncancels = ["a"]\n',
    "unknown-category": '[negation]\ncues = ["no"]\ncancels = ["b"]\n',
    "bad-word": '[negation]\ncues = ["no!"]\n',
    "bad-max-words": '[negation]\ncues = ["no"]\nmax_words = 0\n',
    "not-strings": "[negation]\ncues = [1]\n",
}


@pytest.mark.parametrize("name", sorted(BAD_NEGATION))
def test_bad_negation_table_is_one_line_usage_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        BAD_NEGATION[name] + 'order = ["a"]\n[categories.a]\nlabel = "a"\nmessage = "m"\n'
        'suggestion = "s"\n[[categories.a.rules]]\nid = "r"\nany = ["x"]\n',
        encoding="utf-8",
    )
    with pytest.raises(UsageError) as caught:
        PromptPolicy.load(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_negation_scope_rejects_bad_max_words() -> None:
    with pytest.raises(Exception, match="max_words"):
        NegationScope(cancels=[], cues=["no"], max_words=0)


# --- start-up cost (issue 14): loading compiles nothing; a benign prompt compiles almost nothing


def test_loading_compiles_no_pattern_and_a_benign_prompt_few() -> None:
    policy = PromptPolicy.load()
    assert policy.compiled_count() == 0
    assert policy.check("subtle blink, slight head tilt, gentle breathing") is None
    total = policy.warm()
    assert total > 150
    fresh = PromptPolicy.load()
    fresh.check("subtle blink, slight head tilt, gentle breathing")
    assert fresh.compiled_count() < total // 10


def test_warm_and_lazy_policies_give_the_same_verdicts() -> None:
    lazy, warm = PromptPolicy.load(), PromptPolicy.load()
    warm.warm()
    prompts = CORPUS["allowed"] + [p for ps in CORPUS["refused"].values() for p in ps]
    prompts += [p for _, p in _cases("negated_clothing") + _cases("negated_motion")]
    for prompt in prompts:
        a, b = lazy.check(prompt), warm.check(prompt)
        assert (a and (a.category, a.rule)) == (b and (b.category, b.rule)), prompt
