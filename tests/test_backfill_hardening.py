"""The backfill command refuses bad input in one line before any write, and replaces legacy codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invites import assignment
from invites import services as engine
from invites.codes import is_new_format
from invites.services import space_create
from spaces.models import Space
from tests.faults import client_hook, failing_when
from tests.invariants import invariant_violations, resolves_to, scan_all, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space
from tests.test_backfill_command import run_backfill, run_failing

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parent.parent


def manage_py_env(**extra: str) -> dict[str, str]:
    """The environment of a ``manage.py`` process talking to this test's table."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_SETTINGS", "PYTEST", "DYNAMODB_", "BACKFILL_", "JOB_", "AWS_BATCH"))
    }
    env.update(
        DJANGO_DEBUG="1",
        DYNAMODB_HOST=Space.Meta.host or "",
        DYNAMODB_TABLE=Space.Meta.table_name,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    return env | extra


def backfill_process(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "backfill_invite_codes", *args],
        cwd=REPO_ROOT,
        env=manage_py_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def manage_py(*args: str, **env: str) -> tuple[int, str, str]:
    process = backfill_process(*args, **env)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


# --- every bad option and environment value: one line, status 2, nothing written ------------------


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"BACKFILL_TOTAL_SEGMENTS": "0"}, "BACKFILL_TOTAL_SEGMENTS must be a whole number from 1 to 1,000,000"),
        ([], {"BACKFILL_TOTAL_SEGMENTS": "-3"}, "BACKFILL_TOTAL_SEGMENTS must be a whole number from 1 to"),
        ([], {"BACKFILL_TOTAL_SEGMENTS": "abc"}, "BACKFILL_TOTAL_SEGMENTS must be a whole number from 1 to"),
        ([], {"BACKFILL_TOTAL_SEGMENTS": "3"}, "the scan is split into 3 segments (BACKFILL_TOTAL_SEGMENTS) but"),
        ([], {"JOB_COMPLETION_INDEX": "x1"}, "JOB_COMPLETION_INDEX must be a segment index, got 'x1'"),
        ([], {"JOB_COMPLETION_INDEX": "2"}, "segment 2 (JOB_COMPLETION_INDEX) needs --total-segments N"),
        ([], {"AWS_BATCH_JOB_ARRAY_INDEX": "3", "BACKFILL_TOTAL_SEGMENTS": "3"}, "segment 3 (AWS_BATCH_JOB_ARRA"),
        ([], {"BACKFILL_WORKERS": "100000"}, "BACKFILL_WORKERS must be a whole number from 1 to 128"),
        ([], {"DYNAMODB_MAX_ATTEMPTS": "abc"}, "ImproperlyConfigured: DYNAMODB_MAX_ATTEMPTS must be a whole number"),
        ([], {"DYNAMODB_SCAN_SPLIT": "0"}, "ImproperlyConfigured: DYNAMODB_SCAN_SPLIT must be at least 1, got 0"),
        (["--workers", "0"], {}, "argument --workers: invalid whole number from 1 to 128 value: '0'"),
        (["--total-segments", "0", "--segment", "0"], {}, "argument --total-segments: invalid whole number"),
        (["--segment", "-1", "--total-segments", "2"], {}, "argument --segment: invalid segment index value"),
        (["--limit", "0"], {}, "argument --limit: invalid positive whole number value: '0'"),
        (["--report", "/no/such/dir/report.jsonl"], {}, "cannot write the report file /no/such/dir/report.jsonl: "),
    ],
)
def test_a_bad_option_or_environment_value_is_one_line_status_two_and_writes_nothing(
    dynamo_table: object, args: list[str], env: dict[str, str], message: str
) -> None:
    put_legacy_space(name="Untouched")
    before = scan_all()

    returncode, stdout, stderr = manage_py(*args, **env)

    assert returncode == 2, stdout + stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr
    assert "BACKFILL COMPLETE" not in stdout
    assert scan_all() == before  # the same items, counted and compared


def test_a_web_server_that_is_not_dynamodb_ends_with_one_line_and_status_two(
    dynamo_table: object, web_server_not_dynamodb: str
) -> None:
    returncode, stdout, stderr = manage_py(DYNAMODB_HOST=web_server_not_dynamodb)

    assert returncode == 2
    assert stderr.strip() == (
        f"CommandError: the endpoint {web_server_not_dynamodb} answered, but not as DynamoDB does; "
        "is DYNAMODB_HOST pointing at DynamoDB?"
    )
    assert "BACKFILL COMPLETE" not in stdout


# --- --replace-legacy-codes ------------------------------------------------------------------


def legacy_coded_spaces() -> dict[str, str]:
    """Spaces with codes of the earlier formats (mapped as the earlier system mapped them), and ours."""
    spaces = {
        put_legacy_space(space_id="hexcode", name="Hex", invite_code="a3f9c2d4"): "a3f9c2d4",
        put_legacy_space(space_id="urlsafe", name="Urlsafe", invite_code="Xy-9_kQ2"): "Xy-9_kQ2",
    }
    for space_id, code in spaces.items():
        put_legacy_mapping(code=code, space_id=space_id)
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(space_id)) for space_id in spaces])
    return spaces


def test_replace_legacy_codes_gives_new_codes_to_legacy_format_spaces_only(dynamo_table: object) -> None:
    legacy = legacy_coded_spaces()
    current = space_create(owner_id="o", name="Current")
    without = put_legacy_space(name="No code")

    lines = run_backfill("--replace-legacy-codes", "--workers", "1")

    assert lines[1] == "INFO - Starting legacy invite code replacement"
    for space_id, old_code in legacy.items():
        new_code = stored_code(space_id)
        assert new_code is not None and is_new_format(new_code)
        assert resolves_to(old_code) is None  # the weak code opens nothing any more
        assert resolves_to(new_code) == space_id
        name = Space.get(*Space.key(space_id)).name
        assert (
            f"INFO - ✓ Replaced invite code '{old_code}' of space '{name}' (ID: {space_id}) with '{new_code}'" in lines
        )
    assert stored_code(current.id) == current.invite_code
    assert stored_code(without) is None
    assert "INFO - Found 2 spaces with legacy-format invite codes" in lines
    assert "INFO - Successfully updated: 2" in lines
    assert invariant_violations() == []


def test_replace_legacy_codes_dry_run_lists_them_and_writes_nothing(dynamo_table: object, dynamo_calls) -> None:
    legacy = legacy_coded_spaces()
    dynamo_calls.reset()

    lines = run_backfill("--replace-legacy-codes", "--dry-run", "--workers", "1")

    assert dynamo_calls.writes == 0
    assert all(stored_code(space_id) == code for space_id, code in legacy.items())
    assert "INFO - [DRY RUN] Would replace the invite code of space 'Hex' (ID: hexcode)" in lines
    assert "INFO - Space 'Hex' (ID: hexcode) has legacy-format invite code 'a3f9c2d4'" in lines
    assert "INFO - Would update: 2; nothing was written" in lines


def test_a_space_whose_code_changed_since_the_scan_is_skipped_not_touched(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy_coded_spaces()
    real_regenerate = engine.invite_code_regenerate
    given_by_api: dict[str, str] = {}

    def api_regenerates_first(**kwargs) -> engine.SpaceOutcome:
        if kwargs["space_id"] == "hexcode" and not given_by_api:
            given_by_api["hexcode"] = real_regenerate(space_id="hexcode", source="api").new_code or ""
        return real_regenerate(**kwargs)

    monkeypatch.setattr(engine, "invite_code_regenerate", api_regenerates_first)

    lines = run_backfill("--replace-legacy-codes", "--workers", "1")

    assert stored_code("hexcode") == given_by_api["hexcode"]  # the API's code, not replaced again
    assert "INFO - Space 'Hex' (ID: hexcode) changed its invite code since the scan; skipped" in lines
    assert "INFO - Skipped (code changed since the scan): 1" in lines
    assert "INFO - Successfully updated: 1" in lines
    assert invariant_violations() == []


def test_replace_legacy_codes_reports_failures_with_status_one_and_lists_each_new_code(
    dynamo_table: object, tmp_path: Path
) -> None:
    legacy_coded_spaces()
    report_path = tmp_path / "replaced.jsonl"
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#urlsafe" in body)

    with client_hook("before-send.dynamodb", denied):
        error, lines = run_failing("--replace-legacy-codes", "--report", str(report_path))

    assert error.returncode == 1
    assert any(
        line.startswith("ERROR - Failed to replace the invite code of space 'Urlsafe' (ID: urlsafe): ")
        for line in lines
    )
    *entries, last = [json.loads(line) for line in report_path.read_text().splitlines()]
    changed = {"space_id": "hexcode", "name": "Hex", "status": "updated", "old_code": "a3f9c2d4"}
    assert changed | {"new_code": stored_code("hexcode")} in entries
    assert last["summary"]["replace_legacy_codes"] is True
    assert last["summary"]["failed"] == 1
    assert stored_code("urlsafe") == "Xy-9_kQ2"


def test_replace_legacy_codes_never_marks_a_legacy_table_recorded(legacy_table: object) -> None:
    put_legacy_space(name="Old", invite_code="abcd2345")

    run_backfill("--replace-legacy-codes")

    assert engine.legacy_codes_recorded() is False
