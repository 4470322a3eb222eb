"""What ``docker build`` would install, without Docker: the build context that ``.dockerignore``
lets through, the Dockerfile's ``COPY`` instructions applied to it, and the wheel ``pip install .``
builds from the result, which must hold every module and data file of the project packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("livingphoto", "generation", "moderation", "bot")
SKIP_DIRS = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules"}


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """``(negated, regex)`` per line of ``.dockerignore``, in order (the last match wins)."""
    rules = []
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: a pattern matches a path or any of its parent directories."""
    parts = path.split("/")
    candidates = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            result = not negated
    return result


def context_files() -> Iterator[Path]:
    """Files of the repository that reach the Docker daemon (big tool directories pruned)."""
    rules = dockerignore_rules()
    for root, dirs, names in os.walk(REPO):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            rel = (Path(root) / name).relative_to(REPO)
            if not excluded(rel.as_posix(), rules):
                yield rel


def build_stage_copies(dockerfile: str) -> list[tuple[list[str], str]]:
    """``COPY src… dest`` of the first (build) stage, relative to its WORKDIR."""
    copies: list[tuple[list[str], str]] = []
    stage = 0
    for line in (REPO / "deploy" / dockerfile).read_text(encoding="utf-8").splitlines():
        if line.startswith("FROM "):
            stage += 1
        if stage == 1 and line.startswith("COPY ") and "--from" not in line:
            *sources, dest = line.split()[1:]
            copies.append((sources, dest))
    return copies


def test_dockerignore_matcher_follows_docker_rules() -> None:
    rules = dockerignore_rules()
    assert excluded(".venv/bin/python", rules)
    assert excluded("tests/test_deploy.py", rules)
    assert excluded("deploy/livingphoto.env", rules)
    assert not excluded("livingphoto/cli.py", rules)
    assert excluded("livingphoto/__pycache__/cli.cpython-311.pyc", rules)
    assert excluded("generation/.env", rules)


def build_wheel(workdir: Path, out: Path) -> tuple[set[str], str]:
    """``pip wheel`` the build stage's source tree; the wheel's file names and entry points."""
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    build = subprocess.run(
        [*pip_wheel, "-w", str(out), str(workdir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = out.glob("livingphoto-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return names, archive.read(entry_points).decode()


def test_the_image_builds_install_every_module_and_data_file(tmp_path: Path) -> None:
    context = tmp_path / "context"
    files = list(context_files())
    for rel in files:
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, context / rel)
    assert not any(rel.name == ".env" or rel.suffix == ".safetensors" for rel in files)
    assert not any(rel.parts[0] in {"tests", "deploy", "data", "docs"} for rel in files)
    expected = {rel.as_posix() for rel in files if rel.parts[0] in PACKAGES}
    assert {"livingphoto/cli.py", "moderation/policy.toml"} <= expected

    built: dict[str, tuple[set[str], str]] = {}  # one wheel per distinct set of COPYs
    for dockerfile in ("Dockerfile", "Dockerfile.gpu"):
        copies = build_stage_copies(dockerfile)
        key = repr(copies)
        if key not in built:
            workdir = tmp_path / f"src-{len(built)}"
            workdir.mkdir()
            for sources, dest in copies:
                for source in sources:
                    origin = context / source
                    assert origin.exists(), f"{dockerfile}: COPY {source} is not in the context"
                    if origin.is_dir():  # COPY dir ./dir
                        shutil.copytree(origin, workdir / dest)
                    else:  # COPY file… ./
                        assert dest.endswith("/"), f"{dockerfile}: COPY of files needs a dir"
                        shutil.copy2(origin, workdir / dest / origin.name)
            built[key] = build_wheel(workdir, tmp_path / f"wheels-{len(built)}")
        names, scripts = built[key]
        missing = sorted(expected - names)
        assert not missing, f"pip install . in {dockerfile} would not install {missing}"
        assert re.search(r"^livingphoto = livingphoto\.cli:run$", scripts, flags=re.MULTILINE)
