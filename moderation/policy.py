"""The prompt policy: categories of refused motion prompts, read from an operator-editable TOML file.

The default file is ``moderation/policy.toml`` (``LIVINGPHOTO_POLICY_FILE`` points elsewhere).
Its format::

    order = ["sexual_minors", "sexual", ...]     # categories are tested in this order

    [terms]                                      # named word lists, used as {name} in patterns
    clothing = ["shirt", "t shirt", "bra", "underwear*"]

    [categories.sexual]
    label = "sexual content"
    message = "We don't undress people ..."      # shown to the user, names the category
    suggestion = "You can ask for ..."           # what they *can* ask for

    [[categories.sexual.rules]]
    id = "undressing"
    any = ["{remove} ~3 {clothing}"]             # refused when any of these matches ...
    all = ["{minor}", "@sexual"]                 # ... and every one of these matches ...
    unless = ["nude lipstick"]                   # phrases blanked out before this rule is tested

Patterns are written in plain words and matched against every normalised variant of the prompt
(``moderation.normalize``): lower case, accents stripped, words separated by single spaces.
In a pattern:

- ``word`` matches that whole word; ``word*`` any word starting with it; ``a|b|c`` one of them;
- ``{name}`` one entry of the term list ``name`` (an entry may hold several words);
- ``~N`` up to N other words in between;
- ``@category`` (only in ``all``) any rule of that category;
- ``re:...`` (a whole term entry or pattern) a raw regular expression, for numbers and the like.

``unless`` phrases are replaced by a placeholder word before the rule's own patterns are tested,
so "nude lipstick" spares only those words: "nude lipstick, then she is nude" is still refused.
A rule needs ``any`` or ``all``. The first category in ``order`` with a matching rule refuses the
prompt; its ``id`` is reported as the rule.

An optional ``[negation]`` table (``moderation.negation``) names the categories a negation may
cancel: those are matched against the prompt without its negated words ("no talking, just a
soft smile"), every other category against the whole prompt.

Loading is cheap: patterns are kept as text with their *anchors* (the words a match must start
with) and compiled on first use, only when a prompt holds one of those words; a benign prompt
compiles almost nothing. ``warm()`` compiles every pattern (tests, long-running services).
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livingphoto.errors import PolicyRefusal, UsageError
from moderation.config import ModerationSettings
from moderation.negation import NegationError, NegationScope
from moderation.normalize import fold_case, variants

DEFAULT_POLICY_FILE = Path(__file__).with_name("policy.toml")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_GAP = re.compile(r"^~(\d{1,2})$")
_TERM = re.compile(r"^\{([a-z][a-z0-9_]*)\}$")


@dataclass(frozen=True)
class PolicyVerdict:
    """Why a prompt is refused."""

    category: str
    rule: str
    label: str
    message: str
    suggestion: str

    def refusal(self) -> PolicyRefusal:
        return PolicyRefusal(
            self.category,
            f"{self.message} {self.suggestion}",
            rule=self.rule,
            suggestion=self.suggestion,
        )


@dataclass(frozen=True)
class _Anchors:
    """The words a pattern's match must start with: exact words and prefixes (``None``: any)."""

    words: frozenset[str]
    prefixes: frozenset[str]


@dataclass(frozen=True)
class _Pattern:
    """A pattern kept as text and compiled on first use (``PromptPolicy._compiled``)."""

    body: str
    anchors: _Anchors | None  # None: no cheap pre-test, always compiled

    def could_match(self, text: _Text) -> bool:
        if self.anchors is None:
            return True
        return not (
            self.anchors.words.isdisjoint(text.words)
            and self.anchors.prefixes.isdisjoint(text.prefixes)
        )


@dataclass(frozen=True)
class _Text:
    """One normalised variant of a prompt with its words and every prefix of them."""

    text: str
    words: frozenset[str] = field(init=False)
    prefixes: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        words = frozenset(self.text.split())
        object.__setattr__(self, "words", words)
        object.__setattr__(
            self, "prefixes", frozenset(w[:k] for w in words for k in range(1, len(w) + 1))
        )


@dataclass(frozen=True)
class _Rule:
    id: str
    any: tuple[_Pattern, ...]
    all: tuple[_Pattern | str, ...]  # a str is a category reference
    unless: tuple[_Pattern, ...]


@dataclass(frozen=True)
class _Category:
    name: str
    label: str
    message: str
    suggestion: str
    rules: tuple[_Rule, ...]


class PromptPolicy:
    """A compiled policy. Immutable after loading, so one instance is safe to share across threads."""

    def __init__(
        self,
        categories: Sequence[_Category],
        max_prompt_chars: int,
        source: Path,
        negation: NegationScope | None = None,
    ):
        self._categories = tuple(categories)
        self._by_name = {c.name: c for c in self._categories}
        self.max_prompt_chars = max_prompt_chars
        self.source = source
        self.negation = negation
        # body -> compiled pattern; filled on first use (a cache, not state: the verdicts never
        # depend on it), under a lock so that threads sharing the policy compile each once
        self._cache: dict[str, re.Pattern[str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None = None, max_prompt_chars: int = 500) -> PromptPolicy:
        """Read and compile a policy file; any mistake in it is one ``UsageError`` line."""
        source = path if path is not None else DEFAULT_POLICY_FILE
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"policy file {source} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"policy file {source} cannot be read: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"policy file {source} is not valid TOML: {error}") from None
        try:
            categories = _compile(data)
            negation = (
                NegationScope.from_table(data["negation"], [c.name for c in categories])
                if "negation" in data
                else None
            )
        except (_PolicyError, NegationError) as error:
            raise UsageError(f"policy file {source}: {error}") from None
        return cls(categories, max_prompt_chars, source, negation)

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> PromptPolicy:
        """The policy named by ``LIVINGPHOTO_POLICY_FILE`` (default: the bundled one)."""
        return cls.load(settings.policy_file, settings.max_prompt_chars)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._categories)

    def check(self, prompt: str) -> PolicyVerdict | None:
        """The verdict refusing ``prompt``, or ``None`` when it may be generated.

        Raises ``UsageError`` for a prompt longer than ``max_prompt_chars``.
        """
        if len(prompt) > self.max_prompt_chars:
            raise UsageError(
                f"the motion prompt is too long ({len(prompt)} characters, "
                f"at most {self.max_prompt_chars})"
            )
        texts = tuple(_Text(v) for v in variants(prompt))
        scoped = texts
        cancels: frozenset[str] = frozenset()
        if self.negation is not None and self.negation.cancels:
            stripped = self.negation.without_negated(prompt)
            if stripped != " ".join(prompt.split()):
                scoped = tuple(_Text(v) for v in variants(stripped))
                cancels = self.negation.cancels
        for category in self._categories:
            seen = scoped if category.name in cancels else texts
            for rule in category.rules:
                if any(self._matches(rule, text, scoped, cancels) for text in seen):
                    return PolicyVerdict(
                        category.name, rule.id, category.label, category.message,
                        category.suggestion,
                    )  # fmt: skip
        return None

    def warm(self) -> int:
        """Compile every pattern now (instead of on first use); returns how many there are."""
        patterns = {
            p.body: p
            for c in self._categories
            for r in c.rules
            for p in (*r.any, *r.unless, *(q for q in r.all if isinstance(q, _Pattern)))
        }
        for pattern in patterns.values():
            self._compiled(pattern)
        return len(patterns)

    def enforce(self, prompt: str) -> None:
        """Raise ``PolicyRefusal`` (or ``UsageError``, see ``check``) unless ``prompt`` passes."""
        verdict = self.check(prompt)
        if verdict is not None:
            raise verdict.refusal()

    def compiled_count(self) -> int:
        """How many patterns have been compiled so far (0 right after loading)."""
        return len(self._cache)

    def _matches(
        self, rule: _Rule, text: _Text, scoped: Sequence[_Text], cancels: frozenset[str]
    ) -> bool:
        """Whether ``rule`` matches ``text``; a reference to a category that negation may
        cancel is matched against the ``scoped`` variants (the prompt without negated words)."""
        body = text.text
        for exception in rule.unless:
            if exception.could_match(text):
                body = self._compiled(exception).sub("_", body)
        if body != text.text:
            text = _Text(body)
        if rule.any and not any(self._search(p, text) for p in rule.any):
            return False
        for part in rule.all:
            if isinstance(part, str):
                targets: Iterable[_Text] = scoped if part in cancels else (text,)
                if not any(
                    self._matches(r, t, scoped, frozenset())
                    for t in targets
                    for r in self._by_name[part].rules
                ):
                    return False
            elif not self._search(part, text):
                return False
        return True

    def _search(self, pattern: _Pattern, text: _Text) -> bool:
        return pattern.could_match(text) and self._compiled(pattern).search(text.text) is not None

    def _compiled(self, pattern: _Pattern) -> re.Pattern[str]:
        compiled = self._cache.get(pattern.body)
        if compiled is None:
            with self._lock:
                compiled = self._cache.get(pattern.body)
                if compiled is None:
                    compiled = re.compile(pattern.body)
                    self._cache[pattern.body] = compiled
        return compiled


class _PolicyError(Exception):
    pass


def _compile(data: Mapping[str, Any]) -> list[_Category]:
    order = data.get("order")
    if not isinstance(order, list) or not order or not all(isinstance(n, str) for n in order):
        raise _PolicyError("'order' must be a non-empty list of category names")
    terms = _terms(data.get("terms", {}))
    table = data.get("categories")
    if not isinstance(table, dict):
        raise _PolicyError("missing [categories] table")
    for name in table:
        if name not in order:
            raise _PolicyError(f"category {name!r} is not listed in 'order'")
    categories: list[_Category] = []
    for name in order:
        if not _NAME.match(name) or name not in table:
            raise _PolicyError(f"category {name!r} in 'order' has no [categories.{name}] table")
        categories.append(_category(name, table[name], terms, set(order)))
    _check_references(categories)
    return categories


@dataclass(frozen=True)
class _Term:
    regex: str
    anchors: _Anchors | None


def _terms(raw: object) -> dict[str, _Term]:
    if not isinstance(raw, dict):
        raise _PolicyError("[terms] must be a table of word lists")
    compiled: dict[str, _Term] = {}
    for name, entries in raw.items():
        if not _NAME.match(name):
            raise _PolicyError(f"term list name {name!r} must be lower-case letters, digits, _")
        if not isinstance(entries, list) or not entries:
            raise _PolicyError(f"term list {name!r} must be a non-empty list of strings")
        alternatives: list[str] = []
        anchors: list[_Anchors | None] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise _PolicyError(f"term list {name!r} holds an empty or non-string entry")
            if entry.startswith("re:"):
                alternatives.append(_raw(entry))
                anchors.append(None)
            else:
                alternatives.append(_phrase(entry))
                anchors.append(_anchors(entry.split()[0], f"term list {name!r}"))
        compiled[name] = _Term("(?:" + "|".join(alternatives) + ")", _union(anchors))
    return compiled


def _category(name: str, raw: object, terms: Mapping[str, _Term], names: set[str]) -> _Category:
    if not isinstance(raw, dict):
        raise _PolicyError(f"[categories.{name}] must be a table")
    texts: dict[str, str] = {}
    for key in ("label", "message", "suggestion"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise _PolicyError(f"category {name!r} needs a non-empty {key!r}")
        texts[key] = " ".join(value.split())
    rules_raw = raw.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise _PolicyError(f"category {name!r} needs at least one [[categories.{name}.rules]]")
    rules = tuple(_rule(name, i, r, terms, names) for i, r in enumerate(rules_raw, 1))
    return _Category(name, texts["label"], texts["message"], texts["suggestion"], rules)


def _rule(
    category: str, index: int, raw: object, terms: Mapping[str, _Term], names: set[str]
) -> _Rule:
    where = f"rule {index} of {category!r}"
    if not isinstance(raw, dict):
        raise _PolicyError(f"{where} must be a table")
    unknown = set(raw) - {"id", "any", "all", "unless"}
    if unknown:
        raise _PolicyError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _NAME.match(rule_id):
        raise _PolicyError(f"{where} needs an 'id' of lower-case letters, digits and _")
    where = f"rule {rule_id!r} of {category!r}"
    any_ = tuple(_pattern(p, terms, where) for p in _strings(raw.get("any", []), where, "any"))
    unless = tuple(
        _pattern(p, terms, where) for p in _strings(raw.get("unless", []), where, "unless")
    )
    all_: list[_Pattern | str] = []
    for part in _strings(raw.get("all", []), where, "all"):
        if part.startswith("@"):
            if part[1:] not in names or part[1:] == category:
                raise _PolicyError(f"{where} refers to unknown category {part!r}")
            all_.append(part[1:])
        else:
            all_.append(_pattern(part, terms, where))
    if not any_ and not all_:
        raise _PolicyError(f"{where} needs 'any' or 'all' patterns")
    return _Rule(rule_id, any_, tuple(all_), unless)


def _strings(value: object, where: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _PolicyError(f"{where}: {key!r} must be a list of non-empty strings")
    return list(value)


def _check_references(categories: Sequence[_Category]) -> None:
    referenced = {p for c in categories for r in c.rules for p in r.all if isinstance(p, str)}
    for category in categories:
        if category.name in referenced and any(
            isinstance(p, str) for r in category.rules for p in r.all
        ):
            raise _PolicyError(
                f"category {category.name!r} is referenced with '@' and may not use '@' itself"
            )


def _pattern(text: str, terms: Mapping[str, _Term], where: str) -> _Pattern:
    anchors: _Anchors | None = None
    if text.startswith("re:"):
        body = _raw(text, where)
    else:
        parts: list[str] = []
        gap = ""
        for token in text.split():
            gap_match = _GAP.match(token)
            term_match = _TERM.match(token)
            if gap_match:
                if not parts or gap:
                    raise _PolicyError(f"{where}: '~N' must stand between two words in {text!r}")
                gap = f"(?:\\S+ ){{0,{int(gap_match.group(1))}}}"
                continue
            if term_match:
                if term_match.group(1) not in terms:
                    raise _PolicyError(f"{where}: unknown term list {token!r} in {text!r}")
                piece = terms[term_match.group(1)].regex
                if not parts:
                    anchors = terms[term_match.group(1)].anchors
            else:
                piece = _alternatives(token, where)
                if not parts:
                    anchors = _anchors(token, where)
            parts.append((" " + gap if parts else "") + piece)
            gap = ""
        if gap or not parts:
            raise _PolicyError(f"{where}: '~N' must stand between two words in {text!r}")
        body = "".join(parts)
    return _Pattern(r"(?<!\S)" + body + r"(?!\S)", anchors)


def _raw(entry: str, where: str = "terms") -> str:
    try:
        re.compile(entry[3:])
    except re.error as error:
        raise _PolicyError(f"{where}: bad regular expression {entry!r}: {error}") from None
    return "(?:" + entry[3:] + ")"


def _anchors(token: str, where: str) -> _Anchors:
    """The words (and ``word*`` prefixes) of one ``a|b*`` token: a match starts with one."""
    words: set[str] = set()
    prefixes: set[str] = set()
    for word in token.split("|"):
        star = word.endswith("*")
        stem = fold_case(word[:-1] if star else word)
        if not stem:
            raise _PolicyError(f"{where}: {token!r} has an empty word")
        (prefixes if star else words).add(stem)
    return _Anchors(frozenset(words), frozenset(prefixes))


def _union(parts: Sequence[_Anchors | None]) -> _Anchors | None:
    if any(p is None for p in parts):
        return None
    return _Anchors(
        frozenset(w for p in parts if p is not None for w in p.words),
        frozenset(w for p in parts if p is not None for w in p.prefixes),
    )


def _phrase(entry: str) -> str:
    return " ".join(_alternatives(word, "terms") for word in entry.split())


def _alternatives(token: str, where: str) -> str:
    options: list[str] = []
    for word in token.split("|"):
        star = word.endswith("*")
        stem = fold_case(word[:-1] if star else word)
        if not stem or not all(c.isalnum() for c in stem):
            raise _PolicyError(
                f"{where}: {token!r} must be words of letters and digits ('*' at the end)"
            )
        options.append(re.escape(stem) + ("\\S*" if star else ""))
    return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"
