"""``make mutants``: remove each condition of each engine transaction in turn; the suite must catch every one.

Each mutant is a copy of the working tree with one condition taken out; the
server-side suite (browser, ``make run`` and schemathesis tests aside) runs
against it and must fail. Prints a table and exits 1 if any mutant survives.
A mutant whose text is not found exactly once is an error: the list follows the code.

    python -m devtools.mutants [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("invites", "spaces")
SUITE = [
    "-m",
    "pytest",
    "-x",
    "-q",
    "-n",
    "3",
    "-m",
    "not browser",
    "-p",
    "no:cacheprovider",
]
# The engine's own tests first, so a killed mutant stops early; then every other test file.
ASIDE = ["test_make_run.py", "test_api_schemathesis.py"]  # not server-side: make run itself, and schemathesis
FIRST = ["test_engine_races.py", "test_invite_engine.py", "test_invite_policies.py", "test_audit_invite_codes.py"]


class Mutant(NamedTuple):
    name: str
    original: str
    mutated: str


MUTANTS = [
    Mutant(
        "create: the space is new",
        'tx.put("space", space, condition=Space.pk.does_not_exist())',
        'tx.put("space", space)',
    ),
    Mutant("claim: the code is unclaimed", "condition=CodeClaim.pk.does_not_exist())", ")"),
    Mutant("regenerate: the space holds the code read", "condition=holds(old_code),", "condition=Space.pk.exists(),"),
    Mutant(
        "policy: the space holds the code read", "condition=holds(space.invite_code),", "condition=Space.pk.exists(),"
    ),
    Mutant("assign: the space still has no code", "condition=holds(None),", "condition=Space.pk.exists(),"),
    Mutant(
        "record: the claim is absent or ours",
        "condition=CodeClaim.pk.does_not_exist() | (CodeClaim.space_id == space.id),",
        "",
    ),
    Mutant(
        "record: the space holds the code",
        "Space(*Space.key(space.id)), holds(code))",
        "Space(*Space.key(space.id)), Space.pk.exists())",
    ),
    Mutant(
        "join: the space holds the code used",
        "space_condition=holds(space.invite_code)",
        "space_condition=Space.pk.exists()",
    ),
    Mutant(
        "join: the caller does not own the space",
        "& (Space.owner_id.does_not_exist() | (Space.owner_id != user_id))",
        "",
    ),
    Mutant("join: the code's policy as read", "& policy_condition", ""),
    Mutant(
        "join: the code is not paused",
        "(Space.invite_paused.does_not_exist() | (Space.invite_paused == False)) & (",
        "(",
    ),
    Mutant(
        "join: the code has not expired",
        "Space.invite_expires_at.does_not_exist() | (Space.invite_expires_at > now)",
        "Space.pk.exists()",
    ),
    Mutant("join: the limit is the one read", "& (Space.invite_max_uses == policy.max_uses)", ""),
    Mutant(
        "join: the code has uses left",
        "within_limit = Space.invite_uses.does_not_exist() | (Space.invite_uses < policy.max_uses)",
        "within_limit = Space.pk.exists()",
    ),
    Mutant(
        "join: no limit means none was set",
        "return condition & Space.invite_max_uses.does_not_exist(), []",
        "return condition, []",
    ),
    Mutant(
        "membership: the member is new",
        'tx.put("membership", membership, condition=Membership.pk.does_not_exist())',
        'tx.put("membership", membership)',
    ),
    Mutant("count: still as read", "condition = Space.pk.exists() & count.condition", "condition = Space.pk.exists()"),
    Mutant("count: the space exists", "condition = Space.pk.exists() & count.condition", "condition = count.condition"),
    Mutant("remove: the member exists", "condition=Membership.pk.exists())", ")"),
    Mutant(
        "remove: the count exists",
        "[Space.member_count.add(-1)], condition=Space.member_count.exists()",
        "[Space.member_count.add(-1)]",
    ),
    Mutant(
        "audit: a stray policy only on a space still without code",
        "condition=Space.pk.exists() & bare)",
        "condition=Space.pk.exists())",
    ),
    Mutant(
        "audit: a mapping only for the code the space holds",
        'tx.check("space", _space(finding.space_id), Space.invite_code == finding.code)',
        "",
    ),
    Mutant(
        "audit: a mapping only for the space's own claim",
        'tx.check("claim", CodeClaim(*CodeClaim.key(cast(str, finding.code))), CodeClaim.space_id == finding.space_id)',
        "",
    ),
    Mutant(
        "audit: a dead mapping only if not the space's code",
        "Space.pk.does_not_exist() | Space.invite_code.does_not_exist() | live",
        "Space.pk.does_not_exist() | Space.pk.exists()",
    ),
    Mutant("remove: still no count", 'tx.check("space", space, Space.member_count.does_not_exist())', "pass"),
]


def source_files(root: Path) -> list[Path]:
    return [path for package in PRODUCT for path in (root / package).rglob("*.py")]


def locate(mutant: Mutant, root: Path) -> tuple[Path, str]:
    """The one file holding the mutant's text, and that file's text."""
    found = [(path, text) for path in source_files(root) if mutant.original in (text := path.read_text())]
    count = sum(text.count(mutant.original) for _, text in found)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name!r}: its text is found {count} times, not once; update MUTANTS")
    return found[0]


def apply(mutant: Mutant, root: Path) -> None:
    path, text = locate(mutant, root)
    path.write_text(text.replace(mutant.original, mutant.mutated))


def copy_tree(target: Path) -> None:
    listed = subprocess.run(
        ["/usr/bin/git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_files(root: Path) -> list[str]:
    rest = sorted(path.name for path in (root / "tests").glob("test_*.py") if path.name not in [*FIRST, *ASIDE])
    return [f"tests/{name}" for name in [*FIRST, *rest]]


def run(mutant: Mutant | None, workdir: Path) -> tuple[bool, float, str]:
    """True when the suite fails on the mutant (it is killed); ``None`` runs the tree as it is."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    copy_tree(workdir)
    if mutant is not None:
        apply(mutant, workdir)
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 - our own interpreter and pytest
        [sys.executable, *SUITE, *test_files(workdir)],
        cwd=workdir,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode != 0, time.monotonic() - started, result.stdout[-3000:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run the mutants whose name contains this text (repeatable)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.only or any(text in m.name for text in args.only)]
    for mutant in chosen:  # every text is checked before anything runs
        locate(mutant, REPO)
    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        failed, seconds, output = run(None, Path(scratch) / "tree")
        if failed:  # a killed mutant means something only if the suite passes without it
            print(f"{output}\nthe suite fails without any mutant ({seconds:.0f} s); fix it first")
            return 2
        print(f"{'mutant':<48} {'result':<9} seconds", flush=True)
        survivors = 0
        for mutant in chosen:
            killed, seconds, _ = run(mutant, Path(scratch) / "tree")
            survivors += not killed
            print(f"{mutant.name:<48} {'killed' if killed else 'SURVIVED':<9} {seconds:7.1f}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
