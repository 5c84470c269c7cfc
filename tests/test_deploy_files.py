"""The deploy files: the backfill's Indexed Job and the API's Deployment against Kubernetes' own schemas
(kubernetes-validate, offline), and the Dockerfile's instructions. Nothing here builds or pulls an image."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
# backoffLimitPerIndex and the FailIndex action are beta (on by default) from 1.29, GA from 1.33.
KUBERNETES_VERSIONS = ["1.29.0", "1.33.0"]


def manifest(name: str) -> dict[str, Any]:
    (document,) = list(yaml.safe_load_all((KUBERNETES / name).read_text()))
    return document


def backfill_container(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def env_value(container: dict[str, Any], name: str) -> Any:
    return next(item for item in container["env"] if item["name"] == name)


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", ["backfill-job.yaml", "api-deployment.yaml", "config.yaml"])
def test_the_manifests_are_valid_for_kubernetes(name: str, version: str) -> None:
    # strict: unknown fields (a typo, a field of a newer release) are errors too.
    kubernetes_validate.validate(manifest(name), version, strict=True)


def test_the_backfill_is_an_indexed_job_of_n_workers_that_all_run_at_once() -> None:
    spec = manifest("backfill-job.yaml")["spec"]
    container = backfill_container(manifest("backfill-job.yaml"))

    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    assert int(env_value(container, "BACKFILL_TOTAL_SEGMENTS")["value"]) == spec["completions"]
    assert spec["backoffLimitPerIndex"] >= 1
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # what backoffLimitPerIndex and podFailurePolicy need


def test_a_failed_index_is_retried_and_an_eviction_is_not_counted() -> None:
    spec = manifest("backfill-job.yaml")["spec"]

    assert spec["backoffLimitPerIndex"] >= 1
    assert [rule["action"] for rule in spec["podFailurePolicy"]["rules"]] == ["Ignore"]
    assert {"type": "DisruptionTarget", "status": "True"} in spec["podFailurePolicy"]["rules"][0]["onPodConditions"]


def test_the_workers_retry_throttling_adaptively() -> None:
    container = backfill_container(manifest("backfill-job.yaml"))

    assert env_value(container, "DYNAMODB_RETRY_MODE")["value"] == "adaptive"
    assert env_value(container, "DYNAMODB_MAX_ATTEMPTS")["value"] == "10"


def test_the_jobs_arguments_are_the_commands_own_and_need_no_run_state() -> None:
    from invites.management.commands.backfill_invite_codes import Command

    container = backfill_container(manifest("backfill-job.yaml"))

    assert container["command"] == ["python", "manage.py", "backfill_invite_codes"]
    options = Command().create_parser("manage.py", "backfill_invite_codes").parse_args(container["args"])

    assert options.segment is None  # from JOB_COMPLETION_INDEX
    assert not any(arg.startswith(("--run", "--processes", "--checkpoint")) for arg in container["args"])


def test_the_job_has_resources_and_its_environment_from_a_secret_and_a_configmap() -> None:
    container = backfill_container(manifest("backfill-job.yaml"))
    config = manifest("config.yaml")

    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    sources = {next(iter(source)): next(iter(source.values()))["name"] for source in container["envFrom"]}
    assert sources == {"configMapRef": config["metadata"]["name"], "secretRef": config["metadata"]["name"]}
    assert "DJANGO_SECRET_KEY" not in config["data"]  # secrets stay in the Secret


def test_the_job_runs_the_same_image_as_the_api() -> None:
    (api,) = manifest("api-deployment.yaml")["spec"]["template"]["spec"]["containers"]

    assert backfill_container(manifest("backfill-job.yaml"))["image"] == api["image"]
    assert ":" in api["image"] and not api["image"].endswith(":latest")


def test_the_api_is_probed_on_healthz_and_readyz() -> None:
    (api,) = manifest("api-deployment.yaml")["spec"]["template"]["spec"]["containers"]

    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"


# --- the Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


DOCKERFILE = dockerfile_instructions((ROOT / "Dockerfile").read_text())
KNOWN_INSTRUCTIONS = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD", "ARG", "LABEL", "ENTRYPOINT"}


def instructions(keyword: str) -> list[str]:
    return [arguments for name, arguments in DOCKERFILE if name == keyword]


def test_the_dockerfile_uses_only_known_instructions_and_starts_from_a_pinned_python() -> None:
    assert {name for name, _ in DOCKERFILE} <= KNOWN_INSTRUCTIONS
    assert DOCKERFILE[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.11-slim-\w+", DOCKERFILE[0][1])


def test_the_image_installs_the_runtime_requirements_only() -> None:
    runs = instructions("RUN")

    assert any(re.search(r"\bpip install\b.*-r requirements\.txt\b", run) for run in runs)
    assert not any("requirements-dev" in arguments for _, arguments in DOCKERFILE)
    copies = instructions("COPY")
    install = next(i for i, (name, args) in enumerate(DOCKERFILE) if name == "RUN" and "pip install" in args)
    copied_first = [i for i, (name, args) in enumerate(DOCKERFILE) if name == "COPY" and "requirements.txt" in args]
    assert copied_first and copied_first[0] < install  # the requirements' layer before the code's
    for copy in copies:
        *sources, _destination = shlex.split(copy)
        assert all(source == "." or (ROOT / source).exists() for source in sources), copy


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = instructions("USER")

    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    last_user = max(i for i, (name, _) in enumerate(DOCKERFILE) if name == "USER")
    assert all(name != "RUN" for name, _ in DOCKERFILE[last_user:])


def test_the_image_serves_the_api_by_default_on_the_exposed_port() -> None:
    (cmd,) = instructions("CMD")
    program = json.loads(cmd)  # exec form: signals reach the server, not a shell
    env = " ".join(instructions("ENV"))

    assert program == ["scripts/serve.sh"]
    assert os.access(ROOT / program[0], os.X_OK)
    (port,) = instructions("EXPOSE")
    assert f"GUNICORN_BIND=0.0.0.0:{port}" in env
    assert "PY=python" in env  # serve.sh runs the image's interpreter, not a virtualenv's


def test_dockerignore_leaves_out_local_state_but_not_what_the_image_needs() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/") for pattern in patterns)

    assert all(ignored(path) for path in (".git", ".venv", ".venv-serve", "db.sqlite3", ".run", "tests"))
    needed = [
        "manage.py",
        "requirements.txt",
        "scripts/serve.sh",
        "lifestyle_spaces/settings.py",
        "invites/services.py",
    ]
    assert not any(ignored(path) for path in needed)
