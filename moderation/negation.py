"""Negation scope for the prompt policy: which words of a prompt are negated, so that a negated
harmless motion ("keep mouth closed, don't speak", "no hablar", "kein Reden") reads as a
constraint, not a request.

The rules come from the ``[negation]`` table of the policy file (``moderation/policy.toml``)::

    [negation]
    cancels  = ["speech_impersonation"]  # the only categories a negation may cancel
    cues     = ["no", "not", "don t", "sin", "kein*", ...]   # open a negated scope
    backward = ["nicht", "pas"]          # also negate up to two words before ("sprich nicht")
    stops    = ["stop*", "deja de", ...] # right after a cue they undo it ("don't stop talking")
    partners = ["pas", "jamais", ...]    # after "ne"/"n" they belong to it (French "ne ... pas")
    breaks   = ["and", "but", ...]          # a new clause starts here
    starts   = ["he", "make", ...]          # ... and here, unless right after the cue
    idioms   = ["no matter", "not only", ...]      # look like cues and are not
    max_words = 6                        # a scope covers at most this many words

Entries are words in the policy's normalised spelling (lower case, no accents, apostrophes as
word breaks: "don't" is ``don t``); ``word*`` is a prefix; an entry may hold several words.

A scope opens at a cue and runs to the end of its clause: punctuation (``, . ; : ! ?``), a word
in ``breaks``, a word in ``starts`` once the scope holds at least one word ("no smiling, he
talks" but "don't let her speak"), or ``max_words`` words. A cue followed
within two words by a ``stops`` entry is undone (a double negation is a request).

``NegationScope.without_negated(prompt)`` returns the prompt without its negated words. The policy matches
the categories in ``cancels`` against that text, and every other category against the whole
prompt, so a negation can only ever cancel a harmless motion: "without her top" or "not wearing
a thing" are judged on every word they contain.

Only whole whitespace-separated tokens of the original prompt are dropped, and only when every
word in them is negated, so no evasion spelling ("s.p.e.a.k") is altered in what is kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from moderation.normalize import clean, fold_case

# Punctuation that ends a clause, at the end of a token or between two words of two letters or
# more ("smiling,make"); single letters around a dot are an evasion spelling ("s.a.y"), not a
# clause break.
_TRAILING = re.compile(r"[,.;:!?…)\]]+$")
_LEADING = re.compile(r"^[(\[¡¿]+")
_INNER_BREAK = re.compile(
    r"(?<=[^\W\d_]{2})[,;:!?…]+(?=[^\W\d_])|(?<=[^\W\d_]{2})\.(?=[^\W\d_]{2})"
)
_WORD = re.compile(r"[^\W_]+")
_BACKWARD_REACH = 2
_STOP_REACH = 2


class NegationError(Exception):
    """A malformed ``[negation]`` table (the policy loader turns it into a ``UsageError``)."""


@dataclass(frozen=True)
class _Phrase:
    words: tuple[tuple[str, bool], ...]  # (stem, is_prefix)

    def matches(self, words: Sequence[str], at: int) -> bool:
        if at + len(self.words) > len(words):
            return False
        for offset, (stem, prefix) in enumerate(self.words):
            word = words[at + offset]
            if not (word.startswith(stem) if prefix else word == stem):
                return False
        return True


@dataclass(frozen=True)
class _Word:
    text: str  # normalised word
    token: int  # index of the whitespace token it came from
    clause_end: bool  # punctuation after it ends the clause


class NegationScope:
    """The negation rules of a policy; immutable, safe to share across threads."""

    def __init__(
        self,
        *,
        cancels: Sequence[str],
        cues: Sequence[str],
        backward: Sequence[str] = (),
        stops: Sequence[str] = (),
        partners: Sequence[str] = (),
        breaks: Sequence[str] = (),
        starts: Sequence[str] = (),
        idioms: Sequence[str] = (),
        max_words: int = 6,
    ) -> None:
        self.cancels = frozenset(cancels)
        self._cues = _phrases(cues, "cues")
        self._backward = _phrases(backward, "backward")
        self._stops = _phrases(stops, "stops")
        self._partners = _phrases(partners, "partners")
        self._breaks = _phrases(breaks, "breaks")
        self._starts = _phrases(starts, "starts")
        self._idioms = _phrases(idioms, "idioms")
        if max_words < 1:
            raise NegationError("'max_words' must be at least 1")
        self._max_words = max_words

    @classmethod
    def from_table(cls, raw: object, categories: Sequence[str]) -> NegationScope:
        """Build from the policy file's ``[negation]`` table; ``NegationError`` names a mistake."""
        if not isinstance(raw, Mapping):
            raise NegationError("[negation] must be a table")
        known = {"cancels", "cues", "backward", "stops", "partners", "breaks", "starts", "idioms"}
        unknown = set(raw) - known - {"max_words"}
        if unknown:
            raise NegationError(f"[negation] has unknown keys: {', '.join(sorted(unknown))}")
        lists: dict[str, list[str]] = {}
        for key in known:
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(
                isinstance(v, str) and v.strip() for v in value
            ):
                raise NegationError(f"[negation] {key!r} must be a list of non-empty strings")
            lists[key] = value
        if not lists["cues"]:
            raise NegationError("[negation] needs at least one entry in 'cues'")
        for name in lists["cancels"]:
            if name not in categories:
                raise NegationError(f"[negation] 'cancels' names unknown category {name!r}")
        max_words = raw.get("max_words", 6)
        if not isinstance(max_words, int) or isinstance(max_words, bool):
            raise NegationError("[negation] 'max_words' must be an integer")
        return cls(max_words=max_words, **lists)

    def negated_words(self, prompt: str) -> list[tuple[str, bool]]:
        """Every normalised word of ``prompt`` with whether it lies in a negated scope (the
        cue words themselves are not negated)."""
        words = _words(prompt)
        return [(w.text, n) for w, n in zip(words, self._mark(words), strict=True)]

    def without_negated(self, prompt: str) -> str:
        """``prompt`` without the tokens whose every word is negated (see the module docstring)."""
        tokens = clean(prompt).split()
        words = _words(prompt)
        negated = self._mark(words)
        kept_token = [False] * len(tokens)
        has_word = [False] * len(tokens)
        for word, is_negated in zip(words, negated, strict=True):
            has_word[word.token] = True
            if not is_negated:
                kept_token[word.token] = True
        return " ".join(t for k, t in enumerate(tokens) if kept_token[k] or not has_word[k]).strip()

    def _mark(self, words: Sequence[_Word]) -> list[bool]:
        texts = [w.text for w in words]
        negated = [False] * len(words)
        scope_open = False
        scope_words = 0
        ne_clause = False  # a French "ne"/"n" opened this scope ("ne ... pas" is one negation)
        i = 0
        while i < len(words):
            width = _match_any(self._idioms, texts, i)
            cue = 0 if width else _match_any(self._cues, texts, i)
            if cue and scope_open and ne_clause and _match_any(self._partners, texts, i):
                width, cue = cue, 0
            if cue and self._undone(texts, i + cue):
                # "don't stop talking", "never stop": a request, so nothing to the end of this
                # clause is negated
                scope_open = False
                i = self._clause_end(words, i)
                continue
            if cue:
                scope_open, scope_words = True, 0
                ne_clause = texts[i] in {"ne", "n"}
                # the cue itself stays: "says nothing" must still read as "says nothing"
                if _match_any(self._backward, texts, i):
                    self._negate_backward(words, negated, i)
                width = cue
            else:
                width = width or 1
                if scope_open and (
                    _match_any(self._breaks, texts, i)
                    or (scope_words > 0 and _match_any(self._starts, texts, i))
                ):
                    scope_open = False
                if scope_open:
                    negated[i : i + width] = [True] * width
                    scope_words += width
                    if scope_words >= self._max_words:
                        scope_open = False
            if any(w.clause_end for w in words[i : i + width]):
                scope_open = False
            i += width
        return negated

    def _undone(self, texts: Sequence[str], after: int) -> bool:
        return any(
            _match_any(self._stops, texts, k)
            for k in range(after, min(len(texts), after + _STOP_REACH))
        )

    def _negate_backward(self, words: Sequence[_Word], negated: list[bool], at: int) -> None:
        texts = [w.text for w in words]
        for k in range(at - 1, max(-1, at - 1 - _BACKWARD_REACH), -1):
            if words[k].clause_end or _match_any(self._breaks, texts, k):
                return
            if _match_any(self._starts, texts, k):
                return
            negated[k] = True

    @staticmethod
    def _clause_end(words: Sequence[_Word], at: int) -> int:
        for k in range(at, len(words)):
            if words[k].clause_end:
                return k + 1
        return len(words)


def _phrases(entries: Sequence[str], key: str) -> tuple[_Phrase, ...]:
    phrases: list[_Phrase] = []
    for entry in entries:
        parts: list[tuple[str, bool]] = []
        for raw in entry.split():
            prefix = raw.endswith("*")
            stem = fold_case(raw[:-1] if prefix else raw)
            if not stem or not all(c.isalnum() for c in stem):
                raise NegationError(
                    f"[negation] {key!r}: {entry!r} must be words of letters and digits"
                )
            parts.append((stem, prefix))
        phrases.append(_Phrase(tuple(parts)))
    # longest first, so "do not" wins over "do"
    return tuple(sorted(phrases, key=lambda p: -len(p.words)))


def _match_any(phrases: Sequence[_Phrase], words: Sequence[str], at: int) -> int:
    """The length in words of the first phrase matching at ``at`` (0 when none does)."""
    for phrase in phrases:
        if phrase.matches(words, at):
            return len(phrase.words)
    return 0


def _words(prompt: str) -> list[_Word]:
    words: list[_Word] = []
    for index, token in enumerate(clean(prompt).split()):
        ends = bool(_TRAILING.search(token)) or not _WORD.search(token)
        body = _LEADING.sub("", _TRAILING.sub("", token))
        pieces = _INNER_BREAK.split(body)
        for p, piece in enumerate(pieces):
            found = _WORD.findall(fold_case(piece))
            for w, text in enumerate(found):
                inner_end = w == len(found) - 1 and p < len(pieces) - 1
                words.append(_Word(text, index, inner_end))
        if ends and words:
            # punctuation after a token, or a token of punctuation only ("-", "—")
            words[-1] = replace(words[-1], clause_end=True)
    return words
