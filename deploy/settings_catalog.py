"""Every environment variable the ``livingphoto`` settings classes read, with its default.

Usage::

    .venv/bin/python deploy/settings_catalog.py            # markdown table rows for docs/operators.md
    .venv/bin/python deploy/settings_catalog.py --names    # one variable name per line

The catalog is derived at run time from the code, so it follows the settings as they change:

- the settings modules: every module of the project packages that defines ``from_env`` or reads
  an env-variable-shaped name from an environment mapping (found by parsing);
- the dataclasses aggregated by ``livingphoto.settings.Settings`` and every other dataclass with a
  ``from_env`` classmethod in those modules;
- for each class, the ``"LIVINGPHOTO_…"``/``"TELEGRAM_…"``/``"DISCORD_…"`` names read inside
  ``from_env`` (``env_str(env, "NAME", …)``, ``env.get("NAME")``, ``helper(env, "NAME")``), tied to
  the field whose keyword argument uses them, directly or through a local variable;
- a module-level ``ENV_VARS`` sequence or a class-level ``ENV_VARS`` mapping, where present, and
  any other env literal read in those modules (listed without a default).

The deployment tests use it to check compose/k8s/env files and the operator's guide.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("livingphoto", "generation", "moderation", "bot")
ENV_NAME = re.compile(r"(?:LIVINGPHOTO|TELEGRAM|DISCORD)_[A-Z0-9_]+")


@dataclass(frozen=True)
class SettingVar:
    """One environment variable: where it is read and what it defaults to."""

    name: str
    owner: str  # "module.Class"
    field: str | None  # the dataclass field it sets, when it can be tied to one
    default: object  # the field's default (None when really None or when ``field`` is None)
    meaning: str  # the comment after the field, minus the variable name

    def default_renderings(self) -> tuple[str, ...]:
        """Ways the default may be written in the docs (the first is the preferred one)."""
        return render_default(self.default)


def render_default(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ("(empty)", "(unset)")
    if isinstance(value, bool):
        return ("true", "false") if value else ("false",)
    if isinstance(value, float) and value.is_integer():
        return (str(int(value)), repr(value))
    if isinstance(value, Path):
        return (value.as_posix(),)
    return (str(value),)


def settings_modules() -> list[str]:
    """Project modules that read settings: a class with ``from_env``, or a name read from an
    environment mapping (``env_str(env, "LIVINGPHOTO_…")``, ``os.environ.get("…")``). Found by
    parsing, so nothing heavy is imported."""
    found: list[str] = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            reads = bool(_env_literals(tree)) or any(
                isinstance(node, ast.FunctionDef) and node.name == "from_env"
                for node in ast.walk(tree)
            )
            if reads:
                module = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
                found.append(module.removesuffix(".__init__"))
    return found


def settings_classes(modules: Sequence[ModuleType]) -> list[type]:
    """The settings dataclasses, those aggregated by ``Settings`` first, in a stable order."""
    from livingphoto import settings as aggregate

    found: list[type] = []
    hints = inspect.get_annotations(aggregate.Settings, eval_str=True)
    for hint in hints.values():
        if isinstance(hint, type) and dataclasses.is_dataclass(hint) and hint not in found:
            found.append(hint)
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and dataclasses.is_dataclass(cls)
                and hasattr(cls, "from_env")
                and cls not in found
            ):
                found.append(cls)
    return found


_ENV_OBJECTS = {"env", "environ", "os.environ"}


def _is_env_object(node: ast.expr) -> bool:
    return ast.unparse(node) in _ENV_OBJECTS


def _reads_env(call: ast.Call) -> bool:
    """``helper(env, "NAME", …)``, ``env.get("NAME")``, ``os.environ.get(…)``, ``os.getenv(…)``."""
    if call.args and _is_env_object(call.args[0]):
        return True
    func = call.func
    if isinstance(func, ast.Attribute):
        if func.attr in {"get", "pop", "setdefault"} and _is_env_object(func.value):
            return True
        return ast.unparse(func) == "os.getenv"
    return False


def _env_literals(node: ast.AST) -> list[str]:
    """Env-variable-shaped string constants read from an environment mapping under ``node``."""
    names: list[str] = []
    for child in ast.walk(node):
        candidates: list[ast.expr] = []
        if isinstance(child, ast.Call) and _reads_env(child):
            candidates = [*child.args, *(k.value for k in child.keywords)]
        elif isinstance(child, ast.Subscript) and _is_env_object(child.value):
            candidates = [child.slice]
        for arg in candidates:
            if (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and ENV_NAME.fullmatch(arg.value)
                and arg.value not in names
            ):
                names.append(arg.value)
    return names


def _from_env_fields(cls: type) -> dict[str, str]:
    """``{env var: field}`` read off the source of ``cls.from_env``."""
    source = textwrap.dedent(inspect.getsource(inspect.unwrap(cls.from_env)))  # type: ignore[attr-defined]
    tree = ast.parse(source)
    local_vars: dict[str, list[str]] = {}
    mapping: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            found = _env_literals(node.value)
            for target in node.targets:
                if isinstance(target, ast.Name) and found:
                    local_vars[target.id] = found
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"cls", cls.__name__}
        ):
            for keyword in node.keywords:
                if keyword.arg is None:
                    continue
                names = _env_literals(keyword.value)
                for ref in ast.walk(keyword.value):
                    if isinstance(ref, ast.Name):
                        names.extend(local_vars.get(ref.id, []))
                for name in names:
                    mapping.setdefault(name, keyword.arg)
    for name in _env_literals(tree):
        mapping.setdefault(name, "")
    return mapping


def _field_comments(cls: type) -> dict[str, str]:
    """``{field: trailing comment}`` from the class body."""
    comments: dict[str, str] = {}
    lines, _ = inspect.getsourcelines(cls)
    for line in lines:
        match = re.match(r"\s+(\w+)\s*:[^#]*#\s*(.*)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _default(cls: type, field_name: str | None) -> object:
    if not field_name:
        return None
    for f in dataclasses.fields(cls):
        if f.name == field_name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return None


def catalog() -> list[SettingVar]:
    """All variables, one entry per (variable, owner); sorted by variable name then owner."""
    modules = [importlib.import_module(name) for name in settings_modules()]
    entries: dict[tuple[str, str], SettingVar] = {}
    for cls in settings_classes(modules):
        owner = f"{cls.__module__}.{cls.__name__}"
        mapping = _from_env_fields(cls)
        class_vars = getattr(cls, "ENV_VARS", None)
        if isinstance(class_vars, Mapping):
            for field_name, name in class_vars.items():
                mapping[str(name)] = str(field_name)
        comments = _field_comments(cls)
        for name, field_name in mapping.items():
            comment = comments.get(field_name, "")
            meaning = re.sub(rf"^{re.escape(name)}:?\s*", "", comment)
            entries[(name, owner)] = SettingVar(
                name, owner, field_name or None, _default(cls, field_name), meaning
            )
    for module in modules:
        listed = getattr(module, "ENV_VARS", ())
        names = list(listed) if isinstance(listed, Sequence) and not isinstance(listed, str) else []
        names += _env_literals(ast.parse(inspect.getsource(module)))
        for name in names:
            if not any(key[0] == name for key in entries):
                entries[(str(name), module.__name__)] = SettingVar(
                    str(name), module.__name__, None, None, ""
                )
    return [entries[key] for key in sorted(entries)]


def variable_names() -> frozenset[str]:
    return frozenset(var.name for var in catalog())


def markdown_rows(variables: Sequence[SettingVar]) -> list[str]:
    rows: list[str] = []
    seen: set[str] = set()
    for var in variables:
        if var.name in seen:
            continue
        seen.add(var.name)
        default = var.default_renderings()[0]
        rows.append(f"| `{var.name}` | `{default}` | {var.meaning} |")
    return rows


def main(argv: Sequence[str]) -> int:
    variables = catalog()
    if "--names" in argv:
        print("\n".join(sorted({v.name for v in variables})))
    else:
        print("| Variable | Default | Meaning |\n|---|---|---|")
        print("\n".join(markdown_rows(variables)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main(sys.argv[1:]))
