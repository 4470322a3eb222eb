"""The bots' languages: gettext catalogues, and how a user's language is chosen.

Catalogues are gettext ``.po`` files (domain ``livingphoto``) under
``bot/locale/<language>/LC_MESSAGES/``, shipped as package data. They are compiled in memory by
Babel (``read_po`` + ``write_mo``) the first time a language is used, so a catalogue can never be
out of date with its source. English needs no catalogue: the message ids are the English texts.

Language tags from the platforms (Telegram ``language_code`` such as ``"pt-br"``, Discord
locales such as ``"es-ES"`` or ``"pt-BR"``) are reduced to their primary language with Babel's
``Locale.parse``; anything not in ``LANGUAGES`` is not supported and falls through to the next
candidate, and finally to English.

Usage::

    language = choose(user_override, platform_language, chat_default, guild_locale)  # "es"
    translations = catalogue(language)          # a gettext.NullTranslations
    translations.gettext("✅ I confirm")        # "✅ Lo confirmo"
"""

from __future__ import annotations

import functools
import gettext
import io
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from livingphoto.errors import UsageError

DOMAIN = "livingphoto"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en"
LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr", "pt")
MAX_TAG = 35  # BCP 47 tags in practice; longer input is not a language tag


def normalize(tag: str) -> str | None:
    """The supported language of a platform tag (``"es-ES"`` -> ``"es"``); None when the tag is
    empty, malformed or names a language the bots do not speak."""
    tag = tag.strip()
    if not tag or len(tag) > MAX_TAG:
        return None
    try:
        language = Locale.parse(tag.replace("-", "_")).language
    except (ValueError, TypeError, UnknownLocaleError):
        return None
    return language if language in LANGUAGES else None


def choose(*candidates: str) -> str:
    """The first supported language among ``candidates`` (most specific first), else English."""
    for candidate in candidates:
        language = normalize(candidate)
        if language is not None:
            return language
    return DEFAULT_LANGUAGE


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def catalogue(language: str) -> gettext.NullTranslations:
    """The translations of ``language`` (one of ``LANGUAGES``); compiled once, then shared
    (gettext translations are read-only). Raises ``UsageError`` for an unknown language or a
    catalogue that cannot be read."""
    if language not in LANGUAGES:
        raise UsageError(f"unsupported language {language!r}; choose one of {', '.join(LANGUAGES)}")
    if language == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    path = po_path(language)
    try:
        with path.open("rb") as source:
            messages = read_po(source, locale=language, domain=DOMAIN)
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the {language} catalogue {path}: {error}") from None
    compiled = io.BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def language_name(language: str) -> str:
    """The language's own name for itself ("español", "Deutsch"), from Babel's CLDR data."""
    try:
        name = Locale.parse(language).get_display_name(language)
    except (ValueError, TypeError, UnknownLocaleError):
        return language
    return name or language
