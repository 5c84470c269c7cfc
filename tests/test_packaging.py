"""The lock is the only source of installs: hashed, in step with pyproject.toml, used by make and the image."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
RUNTIME = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
DEVELOPMENT = [Requirement(line) for line in PYPROJECT["dependency-groups"]["dev"]]


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """The lock file's entries: name -> (pinned version, sha256 hashes)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for entry in re.split(r"\n(?=[^\s#])", (ROOT / name).read_text()):
        if entry.startswith("#"):
            continue
        requirement = Requirement(entry.split("\\", 1)[0].split("\n", 1)[0].strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", entry
        entries[canonicalize_name(requirement.name)] = (specifier.version, re.findall(r"--hash=sha256:(\w+)", entry))
    return entries


RUNTIME_LOCK = locked("requirements.txt")
FULL_LOCK = locked("requirements-dev.txt")


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, FULL_LOCK], ids=["runtime", "dev"])
def test_every_locked_requirement_is_pinned_with_hashes(lock: dict[str, tuple[str, list[str]]]) -> None:
    assert len(lock) > 30
    assert [name for name, (_, hashes) in lock.items() if not hashes] == []


def test_pyproject_pins_are_the_locks_top_level_pins() -> None:
    def pins(requirements: list[Requirement]) -> dict[str, str]:
        return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in requirements}

    assert all(str(r.specifier).startswith("==") for r in RUNTIME + DEVELOPMENT)
    assert {name: RUNTIME_LOCK[name][0] for name in pins(RUNTIME)} == pins(RUNTIME)
    assert {name: FULL_LOCK[name][0] for name in pins(RUNTIME + DEVELOPMENT)} == pins(RUNTIME + DEVELOPMENT)


def test_the_runtime_lock_is_the_full_locks_runtime_part_without_a_development_tool() -> None:
    assert {name: FULL_LOCK[name] for name in RUNTIME_LOCK} == RUNTIME_LOCK
    assert not {canonicalize_name(r.name) for r in DEVELOPMENT} & set(RUNTIME_LOCK)


def test_make_and_the_image_install_only_from_the_lock_checking_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install .*", makefile) + re.findall(r"^RUN (pip install .*)", dockerfile, re.M)

    assert installs
    for install in installs:
        arguments = shlex.split(install)
        assert "--require-hashes" in arguments, install
        assert arguments[arguments.index("-r") + 1] in {"requirements.txt", "requirements-dev.txt"}, install
    assert "-r requirements.txt" in installs[-1]  # the image: runtime only
    assert dockerfile.index("COPY requirements.txt") < dockerfile.index("RUN pip install")
