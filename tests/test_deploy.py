"""Deployment files: compose, Dockerfiles, Kubernetes manifests and the env example parse and refer
only to images, commands, settings variables, ports and volumes that exist in the project.

Settings variables are read from the code at test time (``deploy/settings_catalog.py``), commands
are parsed with the real ``livingphoto`` argument parser, and ``docker compose config`` renders the
compose file where a Docker CLI with the compose plugin is installed (a parser of our own renders it
where not; the same checks run on either rendering).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from dotenv import dotenv_values

from livingphoto.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
ENV_EXAMPLE = DEPLOY / "livingphoto.env.example"
OPERATORS = REPO / "docs" / "operators.md"
PROJECT_IMAGES = {"livingphoto": "Dockerfile", "livingphoto-gpu": "Dockerfile.gpu"}
THIRD_PARTY_IMAGES = {"redis"}
# Variables of other software that the deployment files may set (documented in operators.md).
EXTERNAL_ENV = {"HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE"}
# Read by docker compose itself when it renders deploy/compose.yaml (documented in operators.md).
COMPOSE_ENV = {"LIVINGPHOTO_ENV_FILE"}
# Set by the images for the Python runtime, pip, apt and the NVIDIA container runtime.
IMAGE_ENV = {
    "PATH",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "DEBIAN_FRONTEND",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "HF_HUB_DISABLE_TELEMETRY",
}


# ---- the settings catalog and the CLI ------------------------------------------------------------


@cache
def catalog_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "settings_catalog", DEPLOY / "settings_catalog.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["settings_catalog"] = module
    spec.loader.exec_module(module)
    return module


@cache
def settings_vars() -> frozenset[str]:
    names: frozenset[str] = catalog_module().variable_names()
    return names


def check_env_names(names: Iterator[str] | list[str] | set[str], where: str) -> None:
    unknown = sorted(set(names) - settings_vars() - EXTERNAL_ENV)
    assert not unknown, f"{where} sets variables no settings class reads: {unknown}"


def parse_cli(argv: list[str], where: str) -> argparse.Namespace:
    """Parse ``argv`` as ``livingphoto`` arguments; fail with argparse's message if they do not."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(
            f"{where}: `livingphoto {shlex.join(argv)}` is not a valid command: {err.getvalue().strip()}"
        )


def project_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as fh:
        version: str = tomllib.load(fh)["project"]["version"]
    return version


# ---- Dockerfiles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed), self.value
        return parsed


def dockerfile(name: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in (DEPLOY / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, f"{name} ends inside a continued line"
    return instructions


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def env_keys(instructions: list[Instruction]) -> set[str]:
    keys: set[str] = set()
    for ins in instructions:
        if ins.keyword == "ENV":
            keys.update(re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", ins.value))
    return keys


def runtime_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [k for k, ins in enumerate(instructions) if ins.keyword == "FROM"]
    return instructions[starts[-1] :]


@pytest.mark.parametrize("name", sorted(PROJECT_IMAGES.values()))
def test_dockerfiles_run_livingphoto_as_non_root_with_a_real_default_command(name: str) -> None:
    instructions = dockerfile(name)
    final = runtime_stage(instructions)
    assert only(final, "ENTRYPOINT").exec_form() == ["livingphoto"]
    with (REPO / "pyproject.toml").open("rb") as fh:
        assert tomllib.load(fh)["project"]["scripts"]["livingphoto"] == "livingphoto.cli:run"
    parse_cli(only(final, "CMD").exec_form(), f"{name} CMD")
    user = only(final, "USER").value
    assert user not in {"root", "0"}
    runs = [i.value for i in final if i.keyword == "RUN"]
    assert any(re.search(rf"useradd\b.*\b{re.escape(user)}\b", run) for run in runs)
    for ins in instructions:
        if ins.keyword == "COPY" and not ins.value.startswith("--from"):
            for source in ins.value.split()[:-1]:
                assert (REPO / source).exists(), f"{name} copies {source}, which is not in the repo"
    check_env_names(env_keys(instructions) - IMAGE_ENV, name)
    volumes = json.loads(only(final, "VOLUME").value)
    assert "/data" in volumes
    data_env = re.search(
        r"LIVINGPHOTO_DATA_DIR=(\S+)", " ".join(i.value for i in final if i.keyword == "ENV")
    )
    assert data_env is not None and data_env.group(1) == "/data"


def test_cpu_image_is_slim_without_torch_and_checks_healthz_with_python() -> None:
    instructions = dockerfile("Dockerfile")
    assert re.search(
        r"python:3\.11-slim", " ".join(i.value for i in instructions if i.keyword == "ARG")
    )
    installs = [i.value for i in instructions if i.keyword == "RUN" and "pip install" in i.value]
    assert installs and all(re.search(r"pip install \.(\s|$)", v) for v in installs), installs
    assert not any("torch" in v or "[gpu]" in v for v in installs)
    health = only(instructions, "HEALTHCHECK").value
    assert health.split("CMD", 1)[0].strip().startswith("--interval")
    probe = json.loads(health.split("CMD", 1)[1])
    assert probe[0] == "python" and "/healthz" in probe[-1] and "LIVINGPHOTO_PORT" in probe[-1]
    assert only(instructions, "EXPOSE").value == "8750"


def test_gpu_image_installs_the_gpu_extra_on_cuda_and_bakes_no_weights() -> None:
    instructions = dockerfile("Dockerfile.gpu")
    args = {
        i.value.split("=", 1)[0]: i.value.split("=", 1)[1]
        for i in instructions
        if i.keyword == "ARG" and "=" in i.value
    }
    assert args["CUDA_IMAGE"].startswith("nvidia/cuda:12.")
    assert args["PRELOAD_MODEL"] == '""', "weights must not be baked in by default"
    with (REPO / "pyproject.toml").open("rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    assert "gpu" in extras and any(dep.startswith("torch") for dep in extras["gpu"])
    assert any('pip install ".[gpu]"' in i.value for i in instructions if i.keyword == "RUN")
    final = runtime_stage(instructions)
    env = " ".join(i.value for i in final if i.keyword == "ENV")
    hf_home = re.search(r"HF_HOME=(\S+)", env)
    assert hf_home is not None
    volumes = json.loads(only(final, "VOLUME").value)
    assert any(hf_home.group(1).startswith(v + "/") for v in volumes), "HF_HOME must be in a volume"
    cmd = parse_cli(only(final, "CMD").exec_form(), "Dockerfile.gpu CMD")
    assert cmd.command == "worker"


def test_dockerignore_keeps_secrets_data_and_virtualenvs_out_of_the_context() -> None:
    lines = [ln.strip() for ln in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    assert "**" in lines  # deny by default, then allow what `pip install .` needs
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert {
        "pyproject.toml",
        "README.md",
        "livingphoto",
        "generation",
        "moderation",
        "bot",
    } <= allowed
    assert not allowed & {".venv", ".env", "data", "tests", "deploy"}
    assert "**/.env" in lines


# ---- compose ----------------------------------------------------------------------------------------


@dataclass
class ComposeService:
    """The parts of a rendered compose service the checks look at."""

    image: str
    build_dockerfile: str | None
    command: list[str]
    environment: dict[str, str]
    volumes: list[tuple[str, str]]  # (named volume, target)
    ports: list[tuple[str, int, int]]  # (host ip, published, target)
    gpu: bool
    depends_on: set[str]
    healthcheck: list[str] | None  # None: disabled
    profiles: list[str] = field(default_factory=list)


@dataclass
class ComposeProject:
    services: dict[str, ComposeService]
    volumes: set[str]
    rendered_by: str


def compose_plugin() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    return docker if probe.returncode == 0 else None


def render_with_docker(docker: str, profiles: list[str]) -> ComposeProject:
    argv = [docker, "compose", "-f", str(DEPLOY / "compose.yaml")]
    for profile in profiles:
        argv += ["--profile", profile]
    prefixes = ("LIVINGPHOTO_", "TELEGRAM_", "DISCORD_", "COMPOSE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["LIVINGPHOTO_ENV_FILE"] = ENV_EXAMPLE.name
    out = subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, f"docker compose config failed: {out.stderr.strip()}"
    doc = json.loads(out.stdout)
    services: dict[str, ComposeService] = {}
    for name, svc in doc["services"].items():
        devices = (
            svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices") or []
        )
        health = svc.get("healthcheck")
        environment: dict[str, str] = {}
        for env_file in svc.get("env_file") or []:  # compose versions differ in merging these
            path = Path(env_file if isinstance(env_file, str) else env_file["path"])
            environment.update({k: v or "" for k, v in dotenv_values(path).items()})
        environment.update(
            {k: "" if v is None else str(v) for k, v in (svc.get("environment") or {}).items()}
        )
        services[name] = ComposeService(
            image=svc["image"],
            build_dockerfile=(svc.get("build") or {}).get("dockerfile"),
            command=list(svc.get("command") or []),
            environment=environment,
            volumes=[
                (v["source"], v["target"])
                for v in svc.get("volumes", [])
                if v.get("type") == "volume"
            ],
            ports=[
                (p.get("host_ip", ""), int(p["published"]), int(p["target"]))
                for p in svc.get("ports", [])
            ],
            gpu=any(
                d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices
            ),
            depends_on=set(svc.get("depends_on") or {}),
            healthcheck=None
            if health is None or health.get("disable")
            else list(health.get("test", [])),
            profiles=list(svc.get("profiles") or []),
        )
    return ComposeProject(services, set(doc.get("volumes") or {}), "docker compose config")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``."""

    def repl(match: re.Match[str]) -> str:
        name, op, default = match.group(1), match.group(2), match.group(3) or ""
        value = env.get(name)
        if op == ":-":
            return value if value else default
        if op == "-":
            return value if value is not None else default
        assert value is not None, f"compose.yaml needs ${name} set"
        return value

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-)([^}]*))?\}", repl, text)


def render_by_parsing(profiles: list[str]) -> ComposeProject:
    """What ``docker compose config`` does, for the features compose.yaml uses."""
    raw = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", raw):
        assert name in COMPOSE_ENV, (
            f"compose.yaml interpolates ${name}, not a documented compose variable"
        )
    doc = yaml.safe_load(interpolate(raw, {"LIVINGPHOTO_ENV_FILE": ENV_EXAMPLE.name}))
    assert set(doc) <= {"name", "services", "volumes", "networks", "secrets", "configs"} | {
        k for k in doc if k.startswith("x-")
    }
    declared = set(doc.get("volumes") or {})
    services: dict[str, ComposeService] = {}
    for name, svc in doc["services"].items():
        svc_profiles = list(svc.get("profiles") or [])
        if svc_profiles and not set(svc_profiles) & set(profiles):
            continue
        environment: dict[str, str] = {}
        for env_file in svc.get("env_file") or []:
            path = DEPLOY / (env_file if isinstance(env_file, str) else env_file["path"])
            assert path.is_file(), f"{name}: env_file {path} does not exist"
            environment.update({k: v or "" for k, v in dotenv_values(path).items()})
        env_section = svc.get("environment") or {}
        if isinstance(env_section, list):
            env_section = dict(item.split("=", 1) for item in env_section)
        environment.update({k: str(v) for k, v in env_section.items()})
        volumes = []
        for spec in svc.get("volumes") or []:
            source, target = spec.split(":")[:2]
            assert source in declared, f"{name} mounts undeclared volume {source}"
            volumes.append((source, target))
        ports = []
        for spec in svc.get("ports") or []:
            parts = str(spec).split(":")
            host_ip = parts[0] if len(parts) == 3 else ""
            ports.append((host_ip, int(parts[-2]), int(parts[-1])))
        build = svc.get("build")
        if build is not None:
            assert (DEPLOY / build["context"]).resolve() == REPO
        devices = (
            svc.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices") or []
        )
        health = svc.get("healthcheck")
        command = svc.get("command") or []
        services[name] = ComposeService(
            image=svc["image"],
            build_dockerfile=None if build is None else build["dockerfile"],
            command=shlex.split(command) if isinstance(command, str) else list(command),
            environment=environment,
            volumes=volumes,
            ports=ports,
            gpu=any(
                d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices
            ),
            depends_on=set(svc.get("depends_on") or {}),
            healthcheck=None if health is None or health.get("disable") else list(health["test"]),
            profiles=svc_profiles,
        )
    for name, svc in services.items():
        assert svc.depends_on <= set(services), f"{name} depends on a service that is not enabled"
    return ComposeProject(services, declared, "parsing compose.yaml")


@cache
def compose(profiles: tuple[str, ...]) -> ComposeProject:
    docker = compose_plugin()
    if docker is not None:
        return render_with_docker(docker, list(profiles))
    return render_by_parsing(list(profiles))


def image_name(image: str) -> str:
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def dockerfile_image(project: ComposeProject) -> dict[str, str]:
    """``{image name: Dockerfile}`` from the services that build an image."""
    built: dict[str, str] = {}
    for svc in project.services.values():
        if svc.build_dockerfile is not None:
            built[image_name(svc.image)] = Path(svc.build_dockerfile).name
    return built


@pytest.mark.parametrize("profiles", [(), ("cpu",)], ids=["default", "cpu-profile"])
def test_compose_renders_and_uses_only_project_images_commands_and_settings(
    profiles: tuple[str, ...],
) -> None:
    project = compose(profiles)
    expected = {"redis", "service", "worker", "telegram-bot", "discord-bot"}
    assert expected <= set(project.services), project.rendered_by
    assert ("worker-cpu" in project.services) == ("cpu" in profiles)
    built = dockerfile_image(project)
    assert built == PROJECT_IMAGES
    for name, svc in project.services.items():
        base = image_name(svc.image)
        assert base in PROJECT_IMAGES or base in THIRD_PARTY_IMAGES, (
            f"{name} uses image {svc.image}"
        )
        if base in PROJECT_IMAGES:
            assert (DEPLOY / PROJECT_IMAGES[base]).is_file()
            # The image's ENTRYPOINT is `livingphoto`; the compose command is its arguments.
            parse_cli(svc.command, f"compose service {name}")
            check_env_names(set(svc.environment), f"compose service {name}")
        for _, target in svc.volumes:
            assert target.startswith("/")


def test_compose_wires_service_workers_and_bots_through_redis_and_the_shared_data_volume() -> None:
    project = compose(("cpu",))
    svc = project.services
    service = parse_cli(svc["service"].command, "service")
    assert service.command == "service"
    queue = urlparse(vars(service)["queue"])
    assert (queue.scheme, queue.hostname, queue.port) == ("redis", "redis", 6379)
    assert svc["service"].environment["LIVINGPHOTO_QUEUE"] == vars(service)["queue"]
    data_dir = str(vars(service)["data_dir"])
    port = int(vars(service)["port"])
    data_volume = dict((t, s) for s, t in svc["service"].volumes)[data_dir]
    assert svc["service"].environment["LIVINGPHOTO_DATA_DIR"] == data_dir
    assert svc["service"].environment["LIVINGPHOTO_PORT"] == str(port)
    assert any(target == port for _, _, target in svc["service"].ports)
    assert all(host_ip == "127.0.0.1" for host_ip, _, _ in svc["service"].ports)
    health = svc["service"].healthcheck
    assert health is not None and f"127.0.0.1:{port}/healthz" in " ".join(health)
    for name in ("worker", "worker-cpu"):
        worker = parse_cli(svc[name].command, name)
        assert worker.command == "worker"
        assert vars(worker)["queue"] == vars(service)["queue"]
        assert (data_volume, data_dir) in svc[name].volumes, f"{name} must share {data_volume}"
        assert svc[name].environment["LIVINGPHOTO_DATA_DIR"] == data_dir
        assert svc[name].healthcheck is None or name == "worker"
    assert (
        svc["worker"].gpu
        and vars(parse_cli(svc["worker"].command, "worker"))["backend"] == "diffusers"
    )
    assert not svc["worker-cpu"].gpu
    assert vars(parse_cli(svc["worker-cpu"].command, "worker-cpu"))["backend"] == "warp"
    assert image_name(svc["worker-cpu"].image) == "livingphoto"
    for name, platform in (("telegram-bot", "telegram"), ("discord-bot", "discord")):
        bot = parse_cli(svc[name].command, name)
        assert (bot.command, bot.platform) == ("bot", platform)
        assert svc[name].environment["LIVINGPHOTO_SERVICE_URL"] == f"http://service:{port}"
        assert svc[name].healthcheck is None
        assert not any(source == data_volume for source, _ in svc[name].volumes), (
            "bots never see photos"
        )
        assert "service" in svc[name].depends_on
    secrets = {"LIVINGPHOTO_SERVICE_TOKEN", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"}
    for name in ("service", "telegram-bot", "discord-bot"):
        assert secrets <= set(svc[name].environment), (
            f"{name} must get the secrets from the env file"
        )


def test_compose_renders_by_docker_where_docker_is_installed() -> None:
    """The rendering used above comes from `docker compose config` whenever the plugin exists."""
    project = compose(())
    expected = "docker compose config" if compose_plugin() else "parsing compose.yaml"
    assert project.rendered_by == expected
    # Either way the result names every declared volume the services mount.
    assert {source for s in project.services.values() for source, _ in s.volumes} <= project.volumes


def test_compose_parser_rejects_what_docker_would() -> None:
    """The fallback renderer is a checker, not a rubber stamp: bad input makes it fail."""
    with pytest.raises(AssertionError, match="needs"):
        interpolate("${LIVINGPHOTO_UNSET_FOR_TEST}", {})
    assert interpolate("${A:-x}/${B-y}/${C}", {"A": "", "C": "c"}) == "x/y/c"


# ---- the env example -------------------------------------------------------------------------------


def test_env_example_names_only_settings_variables_and_all_secrets() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    active = dotenv_values(ENV_EXAMPLE)
    commented = re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    check_env_names([*active, *commented], "livingphoto.env.example")
    assert {"LIVINGPHOTO_SERVICE_TOKEN", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"} <= set(active)
    for secret in ("LIVINGPHOTO_SERVICE_TOKEN", "TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN"):
        assert active[secret] == "", f"{secret} must ship empty"


# ---- Kubernetes -------------------------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert doc["kind"] == "Kustomization"
    return doc


def kustomize_by_parsing() -> list[dict[str, Any]]:
    """What ``kubectl kustomize deploy/k8s`` does with this kustomization: load the resources,
    set the namespace, apply the common labels and the image overrides."""
    k = kustomization()
    assert set(k) <= {"apiVersion", "kind", "namespace", "labels", "resources", "images"}
    images = {i["name"]: f"{i.get('newName', i['name'])}:{i['newTag']}" for i in k["images"]}
    objects: list[dict[str, Any]] = []
    for name in k["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")):
            if doc is None:
                continue
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = k["namespace"]
            for pairs in k.get("labels", []):
                doc["metadata"].setdefault("labels", {}).update(pairs["pairs"])
            if doc["kind"] in {"Deployment", "StatefulSet"}:
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    base = container["image"].split(":", 1)[0]
                    container["image"] = images.get(base, container["image"])
            objects.append(doc)
    return objects


@cache
def k8s_rendering() -> tuple[str, list[dict[str, Any]]]:
    """The manifests as applied: rendered by ``kubectl kustomize`` where kubectl is installed,
    by ``kustomize_by_parsing`` where not; the same checks run on either."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        out = subprocess.run(
            [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, f"kubectl kustomize failed: {out.stderr.strip()}"
        return "kubectl kustomize", [d for d in yaml.safe_load_all(out.stdout) if d]
    return "parsing deploy/k8s", kustomize_by_parsing()


def k8s_objects() -> list[dict[str, Any]]:
    objects = k8s_rendering()[1]
    for doc in objects:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), f"incomplete object {doc}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    return objects


def test_kustomization_lists_every_manifest_and_renders_the_same_either_way() -> None:
    on_disk = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization()["resources"]) == on_disk, "list every manifest"
    rendered_by, objects = k8s_rendering()
    expected = "kubectl kustomize" if shutil.which("kubectl") else "parsing deploy/k8s"
    assert rendered_by == expected

    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    parsed = {key(d): d for d in kustomize_by_parsing()}
    assert {key(d) for d in objects} == set(parsed)
    namespace = kustomization()["namespace"]
    for doc in objects:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, key(doc)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "livingphoto"
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            images = [c["image"] for c in doc["spec"]["template"]["spec"]["containers"]]
            mine = [c["image"] for c in parsed[key(doc)]["spec"]["template"]["spec"]["containers"]]
            assert images == mine, key(doc)


def k8s_named(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == kind}


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """``(workload name, pod spec)``; a StatefulSet's claim templates count as pod volumes."""
    for obj in k8s_objects():
        if obj["kind"] in {"Deployment", "StatefulSet"}:
            spec = dict(obj["spec"]["template"]["spec"])
            templates = obj["spec"].get("volumeClaimTemplates", [])
            spec["volumes"] = [
                *spec.get("volumes", []),
                *({"name": t["metadata"]["name"], "claimTemplate": True} for t in templates),
            ]
            yield obj["metadata"]["name"], spec


def test_kustomization_images_and_versions_match_the_project() -> None:
    images = kustomization()["images"]
    version = project_version()
    assert {i["name"] for i in images} == set(PROJECT_IMAGES)
    assert all(i["newTag"] == version for i in images)
    for workload, spec in pod_specs():
        for container in spec["containers"]:
            name, _, tag = container["image"].partition(":")
            assert name in PROJECT_IMAGES or name in THIRD_PARTY_IMAGES, f"{workload}: {name}"
            if name in PROJECT_IMAGES:
                assert tag == version, (
                    f"{workload} runs {container['image']}, not version {version}"
                )


def test_k8s_containers_run_real_commands_with_known_settings_and_resources() -> None:
    config_maps, secrets = k8s_named("ConfigMap"), k8s_named("Secret")
    for cm in config_maps.values():
        check_env_names(set(cm["data"]), f"ConfigMap {cm['metadata']['name']}")
    for secret in secrets.values():
        check_env_names(set(secret["stringData"]), f"Secret {secret['metadata']['name']}")
    for workload, spec in pod_specs():
        pod_volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            where = f"{workload}/{container['name']}"
            assert "command" not in container or container["image"].startswith("redis")
            if image_name(container["image"]) in PROJECT_IMAGES:
                parse_cli(container["args"], where)
                for source in container.get("envFrom", []):
                    if "configMapRef" in source:
                        assert source["configMapRef"]["name"] in config_maps, where
                    if "secretRef" in source:
                        assert source["secretRef"]["name"] in secrets, where
                check_env_names({e["name"] for e in container.get("env", [])}, where)
                assert spec["securityContext"]["runAsNonRoot"] is True
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
                resources["limits"]
            )
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in pod_volumes, (
                    f"{where} mounts unknown volume {mount['name']}"
                )


def test_k8s_volumes_claims_and_shared_data_directory() -> None:
    claims = k8s_named("PersistentVolumeClaim")
    assert claims["livingphoto-data"]["spec"]["accessModes"] == ["ReadWriteMany"]
    config = k8s_named("ConfigMap")["livingphoto-config"]["data"]
    data_dir = config["LIVINGPHOTO_DATA_DIR"]
    shared = {}
    for workload, spec in pod_specs():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, workload
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                claim = volume.get("persistentVolumeClaim", {}).get("claimName")
                if claim == "livingphoto-data":
                    assert mount["mountPath"] == data_dir
                    shared[workload] = container
    assert set(shared) == {"livingphoto-service", "livingphoto-worker"}
    service_args = parse_cli(shared["livingphoto-service"]["args"], "service")
    assert str(vars(service_args)["data_dir"]) == data_dir


def test_k8s_service_probes_ports_and_worker_gpu() -> None:
    deployments = k8s_named("Deployment")
    service_pod = deployments["livingphoto-service"]["spec"]["template"]
    (container,) = service_pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = parse_cli(container["args"], "service")
    assert ports["http"] == int(vars(args)["port"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    svc = k8s_named("Service")["livingphoto-service"]
    assert svc["spec"]["selector"].items() <= service_pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    config = k8s_named("ConfigMap")["livingphoto-config"]["data"]
    url = urlparse(config["LIVINGPHOTO_SERVICE_URL"])
    assert (url.hostname, url.port) == ("livingphoto-service", svc["spec"]["ports"][0]["port"])
    assert config["LIVINGPHOTO_QUEUE"] == vars(args)["queue"]
    redis = urlparse(config["LIVINGPHOTO_QUEUE"])
    assert redis.hostname in k8s_named("Service") and redis.port == 6379
    worker = deployments["livingphoto-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert vars(parse_cli(worker["args"], "worker"))["queue"] == config["LIVINGPHOTO_QUEUE"]
    for platform in ("telegram", "discord"):
        bot = deployments[f"livingphoto-{platform}-bot"]
        assert bot["spec"]["replicas"] == 1 and bot["spec"]["strategy"]["type"] == "Recreate"
        args = parse_cli(bot["spec"]["template"]["spec"]["containers"][0]["args"], platform)
        assert (args.command, args.platform) == ("bot", platform)


def test_keda_scales_workers_on_the_stream_group_and_the_service_backlog() -> None:
    from generation.service.redis_queue import GROUP, RedisKeys

    namespace = kustomization()["namespace"]
    services = k8s_named("Service")
    config = k8s_named("ConfigMap")["livingphoto-config"]["data"]
    (scaled,) = k8s_named("ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] in k8s_named("Deployment")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "livingphoto-worker"
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert set(triggers) == {"redis-streams", "metrics-api"}

    def cluster_service(host: str | None, port: int | None) -> str:
        assert host is not None and port is not None
        name, ns, suffix = host.split(".", 2)
        assert (ns, suffix) == (namespace, "svc"), f"{host}: KEDA needs namespace-qualified names"
        assert port in {p["port"] for p in services[name]["spec"]["ports"]}
        return name

    streams = triggers["redis-streams"]["metadata"]
    address = urlparse(f"redis://{streams['address']}")
    assert (
        cluster_service(address.hostname, address.port)
        == urlparse(config["LIVINGPHOTO_QUEUE"]).hostname
    )
    assert streams["stream"] == RedisKeys(config["LIVINGPHOTO_REDIS_PREFIX"]).jobs
    assert streams["consumerGroup"] == GROUP
    assert int(streams["pendingEntriesCount"]) >= 1

    api = triggers["metrics-api"]
    url = urlparse(api["metadata"]["url"])
    assert cluster_service(url.hostname, url.port) == "livingphoto-service"
    assert url.path == "/metrics" and api["metadata"]["format"] == "prometheus"
    metric = api["metadata"]["valueLocation"]
    service_sources = " ".join(
        p.read_text(encoding="utf-8") for p in (REPO / "generation" / "service").glob("*.py")
    )
    assert f"# TYPE {metric} gauge" in service_sources, f"the service exports no gauge {metric}"
    assert api["metadata"]["authMode"] == "bearer"
    auth = {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "TriggerAuthentication"}
    (ref,) = auth[api["authenticationRef"]["name"]]["spec"]["secretTargetRef"]
    assert ref["parameter"] == "token"
    assert (
        ref["key"] == "LIVINGPHOTO_SERVICE_TOKEN"
        and ref["key"] in k8s_named("Secret")[ref["name"]]["stringData"]
    )


def test_documented_cpu_command_starts_no_gpu_service() -> None:
    """The guide's CPU-only command names services whose dependencies never reach a GPU one."""
    guide = (REPO / "docs" / "operators.md").read_text(encoding="utf-8").replace("\\\n", " ")
    match = re.search(r"--profile cpu up -d --build\s+([a-z\- ]+)\n", guide)
    assert match is not None, "the guide's CPU command is missing"
    named = match.group(1).split()
    services = compose(("cpu",)).services
    closure, todo = set(), list(named)
    while todo:
        name = todo.pop()
        assert name in services, f"the CPU command names {name}, not a compose service"
        if name not in closure:
            closure.add(name)
            todo.extend(services[name].depends_on)
    assert not any(services[name].gpu for name in closure)
    assert "worker-cpu" in closure and {"service", "redis"} <= closure
    header = (DEPLOY / "compose.yaml").read_text(encoding="utf-8").replace("\\\n#", " ")
    assert " ".join(named) in re.sub(r"\s+", " ", header)
