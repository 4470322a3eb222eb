"""The operator's guide documents every settings variable with its real default, and its facts
(Discord permissions, bot commands, default model, metrics) match the code."""

from __future__ import annotations

import ast
import importlib.util
import re
import sqlite3
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import discord

REPO = Path(__file__).resolve().parents[1]
OPERATORS = REPO / "docs" / "operators.md"


@cache
def catalog_module() -> ModuleType:
    path = REPO / "deploy" / "settings_catalog.py"
    spec = importlib.util.spec_from_file_location("settings_catalog", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["settings_catalog"] = module
    spec.loader.exec_module(module)
    return module


@cache
def guide() -> str:
    return OPERATORS.read_text(encoding="utf-8")


def table_rows() -> dict[str, list[str]]:
    """``{variable: [cells of its row]}`` for every table row whose first cell is `NAME`."""
    rows: dict[str, list[str]] = {}
    for line in guide().splitlines():
        match = re.match(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            assert match.group(1) not in rows, f"{match.group(1)} has two rows"
            rows[match.group(1)] = cells
    return rows


def test_every_settings_variable_has_a_row_with_its_default() -> None:
    catalog = catalog_module().catalog()
    assert len({v.name for v in catalog}) >= 40, "the catalog found too few variables"
    rows = table_rows()
    missing = sorted({v.name for v in catalog} - set(rows))
    assert not missing, f"docs/operators.md does not document: {missing}"
    for var in catalog:
        if var.field is None:
            continue  # read outside a settings class: no default to compare
        default_cell = rows[var.name][0]
        shown = [f"`{r}`" for r in var.default_renderings()]
        assert any(s in default_cell for s in shown), (
            f"{var.name}: default cell {default_cell!r} should show {shown[0]} ({var.owner})"
        )
        assert rows[var.name][1], f"{var.name} has no meaning"


def test_variables_of_other_software_in_the_deployment_files_are_documented() -> None:
    deploy_text = " ".join(
        p.read_text(encoding="utf-8")
        for p in [*(REPO / "deploy").rglob("*.yaml"), REPO / "deploy" / "livingphoto.env.example"]
    )
    rows = table_rows()
    for name in ("HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "LIVINGPHOTO_ENV_FILE"):
        assert name in deploy_text or name == "HF_HUB_OFFLINE"
        assert name in rows, f"{name} is used by the deployment files but not documented"


def test_the_guide_covers_every_topic_an_operator_needs() -> None:
    headings = [h.lower() for h in re.findall(r"^#+ (.+)$", guide(), flags=re.MULTILINE)]
    for topic in (
        "discord application",
        "telegram bot",
        "configuration",
        "choosing a model and a gpu",
        "scaling out",
        "kubernetes",
        "retention and privacy",
        "/metrics",
        "c2pa",
        "backing up the job store",
        "upgrading",
    ):
        assert any(topic in h for h in headings), f"no section about {topic}"
    for fact in (
        "Message Content Intent",
        "applications.commands",
        "BotFather",
        "/setprivacy",
        "administrators",
        "sqlite3",
        ".backup",
        "330 s",
        "2 s",
    ):
        assert fact in guide(), f"the guide does not mention {fact}"
    assert "docs/operators.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_discord_invite_permissions_match_the_listed_permissions() -> None:
    listed = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        add_reactions=True,
        use_application_commands=True,
    )
    match = re.search(r"permissions=(\d+)", guide())
    assert match is not None and int(match.group(1)) == listed.value
    assert f"permissions integer `{listed.value}`" in guide()


def test_documented_bot_commands_are_the_registered_ones() -> None:
    from bot.discord.bot import make_commands
    from bot.telegram.app import COMMANDS

    telegram = {c.command for c in COMMANDS}
    discord_commands = {c.name for c in make_commands()}
    for name in telegram | discord_commands:
        assert f"/{name}" in guide(), f"/{name} is not in the guide"
    botfather = {"newbot", "setprivacy", "setjoingroups", "setcommands", "revoke"}
    bot_sections = guide().split("## 2.", 1)[1].split("## 4.", 1)[0]
    for name in re.findall(r"`/([a-z]+)`", bot_sections):
        if name not in botfather | {"start"}:
            assert name in telegram | discord_commands, f"the guide names /{name}, no bot has it"


def test_default_model_and_metrics_in_the_guide_match_the_code() -> None:
    tree = ast.parse(
        (REPO / "generation" / "backends" / "diffusers.py").read_text(encoding="utf-8")
    )
    default_model = next(
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "DEFAULT_MODEL" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    )
    assert isinstance(default_model, str)
    assert f"empty = `{default_model}`" in guide()
    from generation.service.metrics import Metrics

    exported = set(re.findall(r"^# TYPE (\S+) ", Metrics().render(0, {}), flags=re.MULTILINE))
    documented = set(re.findall(r"^\| `(livingphoto_[a-z_]+)", guide(), flags=re.MULTILINE))
    assert documented == exported


def test_the_documented_online_backup_copies_a_live_wal_database(tmp_path: Path) -> None:
    """Run the guide's backup snippet against a database another connection is writing."""
    block = re.search(r'exec service python -c "\n(.*?)\n"\n', guide(), flags=re.DOTALL)
    assert block is not None, "the guide's in-container backup snippet is missing"
    code = block.group(1).replace("'/data", f"'{tmp_path}/data")
    data = tmp_path / "data"
    data.mkdir()
    writer = sqlite3.connect(data / "jobs.sqlite3")
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT)")
        with writer:
            writer.executemany(
                "INSERT INTO jobs VALUES (?, ?)", [(f"job-{k}", "done") for k in range(50)]
            )
        # Still open and not checkpointed: the rows live in jobs.sqlite3-wal, so copying the
        # main file alone (what the guide warns against) would lose them.
        assert (data / "jobs.sqlite3-wal").stat().st_size > 0
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr
        assert "jobs.sqlite3 backed up" in run.stdout
    finally:
        writer.close()
    backup = sqlite3.connect(data / "backup" / "jobs.sqlite3")
    try:
        assert backup.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert backup.execute("SELECT count(*) FROM jobs").fetchone() == (50,)
    finally:
        backup.close()
