"""The bots' languages: catalogues complete and consistent, language choice, the consent ledger's
language, and the Discord skin's modules importable one by one (no import circle)."""

from __future__ import annotations

import ast
import string
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import i18n
from bot.texts import for_language
from livingphoto.errors import UsageError
from moderation.consent import CONSENT_VERSION, CONSENT_WORDING, ConsentLedger
from moderation.requester import Requester
from moderation.store import Store

ROOT = Path(__file__).resolve().parents[1]
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE]
KEYWORDS = {"_": None, "ngettext": (1, 2), "locale_str": None}


def source_messages() -> set[str]:
    """Every message id the bots' code marks for translation, plus the consent wording."""
    found = {CONSENT_WORDING}
    for _, _, message, _, _ in extract_from_dir(str(ROOT / "bot"), keywords=KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_with_the_same_placeholders(language: str) -> None:
    with i18n.po_path(language).open("rb") as source:
        catalogue = read_po(source, locale=language)
    messages = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalogue if m.id}
    wanted = source_messages()
    assert len(wanted) > 100
    assert sorted(wanted - set(messages)) == []  # nothing untranslated
    assert sorted(set(messages) - wanted) == []  # nothing stale
    for msgid, message in messages.items():
        assert not message.fuzzy, msgid
        ids = [str(i) for i in (message.id if isinstance(message.id, tuple) else (message.id,))]
        raw = message.string if isinstance(message.string, tuple) else (message.string,)
        strings = [str(s or "") for s in raw]
        assert all(strings), f"{language}: empty translation of {msgid!r}"
        expected = set().union(*(placeholders(i) for i in ids))
        for translated in strings:
            assert placeholders(translated) == expected, (language, msgid, translated)
            assert translated.count("/forget") == msgid.count("/forget"), msgid
            assert translated != msgid or len(msgid) < 12, f"{language}: {msgid!r} left in English"


def test_texts_in_each_language_differ_and_format() -> None:
    english = for_language("en")
    for language in TRANSLATED:
        t = for_language(language)
        assert t.consent_question != english.consent_question
        assert t.consent_yes != english.consent_yes and t.consent_no != english.consent_no
        assert t.help_text("telegram") != english.help_text("telegram")
        assert "{" not in t.done(1) + t.done(5) + t.duration(400) + t.vote_result(2, 3)
        assert t.forgot(1, 2, 1, 0).count(",") >= 1
        assert len(t.command_descriptions()["settings"]) <= 100  # Discord's limit
    assert for_language("fr").duration(1) == "1 seconde"  # French: 0 and 1 are singular
    assert for_language("de").duration(120) == "2 Minuten"


@pytest.mark.parametrize(
    ("candidates", "chosen"),
    [
        (("", "es-ES"), "es"),
        (("", "pt-BR", "de"), "pt"),
        (("de", "es"), "de"),  # the user's own choice first
        (("", "ja", "fr"), "fr"),  # an unsupported client language falls through
        (("", "", "", "de"), "de"),  # the guild's locale last
        (("x" * 50, "not a tag!", ""), "en"),
        ((), "en"),
    ],
)
def test_language_choice(candidates: tuple[str, ...], chosen: str) -> None:
    assert i18n.choose(*candidates) == chosen


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unsupported language"):
        i18n.catalogue("xx")
    assert i18n.normalize("en-GB") == "en" and i18n.normalize("zz") is None
    assert i18n.language_name("de") == "Deutsch"


def test_consent_ledger_records_the_language_and_stays_valid_across_languages(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "consent.sqlite3", _consent_schema())
    ledger = ConsentLedger(store, clock=lambda: 1000.0)
    ana = Requester("telegram", "2001", "2001")
    record = ledger.record(ana, CONSENT_VERSION, language="es")
    assert record.language == "es" and record.valid
    # she switches the bot to German: the Spanish consent is still the one on record
    status = ledger.status(ana)
    assert status is not None and status.valid and status.language == "es"
    with pytest.raises(UsageError, match="language"):
        ledger.record(ana, CONSENT_VERSION, language="español")
    assert ledger.record(Requester("cli", "me", "")).language == "en"
    store.close()


def test_an_older_ledger_gains_the_language_column(tmp_path: Path) -> None:
    old_schema = _consent_schema().replace(",\n    language TEXT NOT NULL DEFAULT 'en'", "")
    assert "language" not in old_schema
    path = tmp_path / "old.sqlite3"
    store = Store.open(path, old_schema)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO consent (platform, user_id, scope, wording_version, recorded_at)"
            " VALUES ('discord', '7', 'attested', ?, 5.0)",
            (CONSENT_VERSION,),
        )
    ledger = ConsentLedger(store, clock=lambda: 9.0)
    status = ledger.status(Requester("discord", "7", ""))
    assert status is not None and status.valid and status.language == "en"
    store.close()


def _consent_schema() -> str:
    from moderation.consent import SCHEMA

    return SCHEMA


DISCORD_MODULES = sorted(
    f"bot.discord.{p.stem}" for p in (ROOT / "bot" / "discord").glob("*.py") if p.stem != "__init__"
)


@pytest.mark.parametrize("module", DISCORD_MODULES)
def test_each_discord_module_imports_alone(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_discord_modules_use_each_other_one_way() -> None:
    """No cycle among bot/discord's modules, counting imports under TYPE_CHECKING too."""
    graph: dict[str, set[str]] = {}
    for module in DISCORD_MODULES:
        path = ROOT / Path(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[module] = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in DISCORD_MODULES
        }
    assert graph["bot.discord.buttons"] == set()

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        return any(
            dep == target or (dep not in seen and reaches(dep, target, seen | {dep}))
            for dep in graph[start]
        )

    assert [m for m in DISCORD_MODULES if reaches(m, m, {m})] == []
