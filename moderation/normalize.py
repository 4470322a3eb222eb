"""Normalising prompt text against evasion, before the policy rules are matched.

A prompt becomes a few *variants*, each a string of lower-case words separated by single spaces.
The policy tests its rules against every variant, so a rule only has to be written once, in plain
words. The variants undo, in combination:

- compatibility forms and case: NFKC (full-width and mathematical letters), case folding, accents
  stripped (``desnúdate`` -> ``desnudate``, ``ё`` -> ``е``);
- invisible characters: zero-width and other format characters removed, control characters
  removed (tabs and line breaks become spaces);
- homoglyphs: Cyrillic and Greek lookalikes folded to Latin letters. Words that mix scripts are
  always folded; in one variant every lookalike is folded (``ѕех`` written all in Cyrillic), the
  others keep genuine Cyrillic words intact for the Russian rules;
- leetspeak inside words that contain a letter (``sh1rt``, ``$ex``, ``nud3``): ``0``->o,
  ``1``->i or l (two variants), ``3``->e, ``4``->a, ``5``->s, ``7``->t, ``@``->a, ``$``->s,
  ``!``->i, ``|``->l;
- separators: punctuation inside a word removed (``f.u.c.k``, ``s-e-x``, ``und_ress``) and runs of
  three or more single letters joined (``n u d e``);
- repeated letters: runs of three or more of the same letter squeezed to one and to two
  (``nuuuude`` -> ``nude``, ``sexxxy`` -> ``sexy``, ``asssss`` -> ``ass``).

Everything here is a pure function of its input; nothing is cached across calls.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Cyrillic and Greek letters that look like Latin ones (both cases: folding happens before
# case folding, so that a Greek capital Nu becomes "n", not "v").
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic capitals
    "А": "a", "В": "b", "Е": "e", "Ё": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p",
    "С": "c", "Т": "t", "Х": "x", "У": "y", "Ѕ": "s", "І": "i", "Ј": "j", "Ԁ": "d", "Ү": "y",
    "Ԛ": "q", "Ԝ": "w", "Ӏ": "l",
    # Cyrillic small letters
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "х": "x", "у": "y", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "ү": "y",
    "ԛ": "q", "ԝ": "w", "ӏ": "l", "ь": "b", "һ": "h", "ѵ": "v",
    # Greek capitals
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Greek small letters
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "γ": "y", "η": "n",
    # Latin lookalikes outside ASCII
    "ı": "i", "ɡ": "g", "ɑ": "a", "ʏ": "y",
}  # fmt: skip

_LEET_COMMON: dict[str, str] = {
    "0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l",
}  # fmt: skip
_LEET_ONE = ("i", "l")  # "1" is read both ways, in two variants

_KEEP_WHITESPACE = {"\t", "\n", "\r", "\v", "\f"}
_EDGE = re.compile(r"^[^\w@$]+|[^\w]+$")
_RUN3 = re.compile(r"([^\W\d_])\1{2,}")


def clean(text: str) -> str:
    """NFKC, invisible characters removed, control characters out, whitespace kept as spaces."""
    out: list[str] = []
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if char in _KEEP_WHITESPACE or category in ("Zs", "Zl", "Zp"):
            out.append(" ")
        elif category not in ("Cf", "Cc", "Cs", "Co", "Cn"):
            # Format (zero-width), control, surrogate, private-use and unassigned characters
            # go; combining marks stay here and are stripped with the accents by fold_case.
            out.append(char)
    return "".join(out)


def fold_case(text: str) -> str:
    """Case folding plus accents stripped (also used to compile the policy's own words)."""
    if text.isascii():
        return text.lower()  # the same result, without the Unicode round trip
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return unicodedata.normalize("NFC", stripped)


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _fold_homoglyphs(token: str, everywhere: bool) -> str:
    if not any(c in _HOMOGLYPHS for c in token):
        return token
    if not everywhere and not any(_is_latin(c) for c in token):
        return token  # a genuine Cyrillic or Greek word
    return "".join(_HOMOGLYPHS.get(c, c) for c in token)


def _leet(token: str, one: str) -> str:
    if not any(c.isalpha() for c in token):
        return token  # "3 seconds" stays a number
    token = _EDGE.sub("", token)
    return "".join(one if c == "1" else _LEET_COMMON.get(c, c) for c in token)


def _split(token: str, glue: bool) -> list[str]:
    if glue:
        return ["".join(c for c in token if c.isalnum())]
    return "".join(c if c.isalnum() else " " for c in token).split()


def _join_letter_runs(words: list[str]) -> list[str]:
    out: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if len(run) >= 3:
            out.append("".join(run))
        else:
            out.extend(run)
        run = []
        if word:
            out.append(word)
    return out


def _squeeze(text: str, keep: int) -> str:
    return _RUN3.sub(lambda m: m.group(1) * keep, text)


def base(text: str) -> str:
    """The plain variant: cleaned, folded, punctuation as word breaks. Used for excerpts."""
    words: list[str] = []
    for token in clean(text).split():
        words.extend(_split(fold_case(_fold_homoglyphs(token, everywhere=False)), glue=False))
    return " ".join(words)


def variants(text: str) -> tuple[str, ...]:
    """Every normalised reading of ``text`` (deduplicated, the plain one first)."""
    tokens = clean(text).split()
    seen: dict[str, None] = {}
    for everywhere in (False, True):
        folded = [fold_case(_fold_homoglyphs(t, everywhere)) for t in tokens]
        for leet in (None, *_LEET_ONE):
            spelled = folded if leet is None else [_leet(t, leet) for t in folded]
            for glue in (False, True):
                words = _words(spelled, glue)
                joined = " ".join(words)
                seen.setdefault(joined, None)
                if _RUN3.search(joined):
                    seen.setdefault(_squeeze(joined, 1), None)
                    seen.setdefault(_squeeze(joined, 2), None)
    seen.pop("", None)
    return tuple(seen) if seen else ("",)


def _words(tokens: Iterable[str], glue: bool) -> list[str]:
    words: list[str] = []
    for token in tokens:
        words.extend(w for w in _split(token, glue) if w)
    return _join_letter_runs(words) if glue else words
