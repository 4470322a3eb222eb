"""Localised slash commands: discord.py's ``Translator`` backed by the bots' gettext catalogues.

Command and option descriptions are written as ``app_commands.locale_str("English text")``; on
``tree.sync()`` discord.py asks this translator for every Discord locale and sends the answers as
``description_localizations``, so a Spanish or German client shows them in its language. Command
names stay English (they are what users type).

Usage::

    await tree.set_translator(CatalogueTranslator())   # in setup_hook, before tree.sync()
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n import DEFAULT_LANGUAGE, catalogue, normalize


class CatalogueTranslator(app_commands.Translator):
    """Looks ``locale_str`` messages up in the catalogue of the locale's language."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The translation, or None (Discord then shows the English text)."""
        language = normalize(locale.value)
        if language is None or language == DEFAULT_LANGUAGE:
            return None
        translated = catalogue(language).gettext(string.message)
        return translated if translated != string.message else None
