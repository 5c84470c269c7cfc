"""The backfill command never writes before it fails, fails in one line, keeps its bounds, and replaces legacy codes."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invites import services as engine
from invites.codes import is_new_format
from invites.services import space_create
from spaces.dynamodb import TableBinding
from spaces.models import Space
from tests.faults import client_hook, failing_when
from tests.invariants import invariant_violations, resolves_to, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space
from tests.test_backfill_command import run_backfill, run_failing
from tests.test_backfill_service import REPO_ROOT, manage_py_env

pytestmark = pytest.mark.django_db


def manage_py(binding: TableBinding, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "backfill_invite_codes", *args],
        cwd=REPO_ROOT,
        env=manage_py_env(binding, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_status_two(result: subprocess.CompletedProcess[str], expected_start: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(expected_start), result.stderr


# --- every output path is checked before the first write --------------------------------------


def test_a_checkpoint_in_a_missing_directory_fails_before_any_write(
    dynamo_table: object, dynamo_calls, tmp_path: Path
) -> None:
    space_id = put_legacy_space(name="Untouched")
    dynamo_calls.reset()

    error, _ = run_failing("--checkpoint", str(tmp_path / "no-such-dir" / "backfill.json"), "--segments", "1")

    assert error.returncode == 2
    assert str(error).startswith(f"cannot write the checkpoint file {tmp_path / 'no-such-dir' / 'backfill.json'}: ")
    assert "\n" not in str(error)
    assert dynamo_calls.total == 0
    assert stored_code(space_id) is None


def test_a_checkpoint_path_that_is_not_a_regular_file_is_refused(dynamo_table: object, dynamo_calls) -> None:
    dynamo_calls.reset()

    error, _ = run_failing("--checkpoint", "/dev/null")

    assert error.returncode == 2
    assert str(error) == "cannot write the checkpoint file /dev/null: not a regular file"
    assert dynamo_calls.writes == 0


def test_a_report_on_a_full_device_fails_before_any_write(dynamo_table: object, dynamo_calls) -> None:
    space_id = put_legacy_space(name="Untouched")
    dynamo_calls.reset()

    error, _ = run_failing("--report", "/dev/full")  # every write to /dev/full: "No space left on device"

    assert error.returncode == 2
    assert str(error) == "cannot write the report file /dev/full: No space left on device"
    assert dynamo_calls.total == 0
    assert stored_code(space_id) is None


def test_a_report_that_fails_mid_run_is_one_line_with_status_two(
    dynamo_table: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites.management.commands._backfill_report import JsonReportWriter

    put_legacy_space(name="Written")
    real_add = JsonReportWriter.add

    class FullDevice:
        def write(self, _text: str) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            pass

    def device_fills_up(self: JsonReportWriter, outcome: object) -> None:
        self._handle = FullDevice()  # the device filled up after the report was opened
        real_add(self, outcome)  # type: ignore[arg-type]

    monkeypatch.setattr(JsonReportWriter, "add", device_fills_up)

    error, _ = run_failing("--report", str(tmp_path / "report.json"))

    assert error.returncode == 2
    assert str(error) == (
        f"cannot write the report file {tmp_path / 'report.json'}: No space left on device "
        "(the run itself finished: 1 updated, 0 failed)"
    )


# --- settings and endpoints that cannot work: one line, not a traceback ---------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DYNAMODB_MAX_ATTEMPTS": "abc"}, "ImproperlyConfigured: DYNAMODB_MAX_ATTEMPTS must be a whole number"),
        ({"DYNAMODB_RETRY_MODE": "sometimes"}, "ImproperlyConfigured: DYNAMODB_RETRY_MODE must be standard, adaptive"),
        ({"DYNAMODB_HOST": "not a url"}, "ImproperlyConfigured: DYNAMODB_HOST must be a URL"),
        ({"BACKFILL_PAGE_SIZE": "0"}, "CommandError: the page size (BACKFILL_PAGE_SIZE) must be at least 1, got 0"),
        ({"BACKFILL_WORKERS": "100000"}, "CommandError: workers (--workers, BACKFILL_WORKERS) must be between 1"),
    ],
)
def test_an_unusable_setting_ends_with_one_line_and_status_two(
    dynamo_table: TableBinding, env: dict[str, str], message: str
) -> None:
    result = manage_py(dynamo_table, **env)

    assert_one_line_status_two(result, message)


def test_a_web_server_that_is_not_dynamodb_ends_with_one_line_and_status_two(
    dynamo_table: TableBinding, web_server_not_dynamodb: str
) -> None:
    not_dynamo = TableBinding(**{**dynamo_table.__dict__, "host": web_server_not_dynamodb})

    result = manage_py(not_dynamo)

    assert_one_line_status_two(
        result,
        f"CommandError: the endpoint {web_server_not_dynamodb} answered, but not as DynamoDB does; "
        "is DYNAMODB_HOST pointing at DynamoDB?",
    )
    assert "BACKFILL COMPLETE" not in result.stdout


def test_an_endpoint_botocore_refuses_in_process_is_one_line(dynamo_table: object, connect_with) -> None:
    connect_with(DYNAMODB_HOST="not-a-url")

    error, _ = run_failing()

    assert error.returncode == 2
    assert str(error).startswith("DYNAMODB_HOST 'not-a-url' cannot be used: ")


# --- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--segments", "100000"],
        ["--workers", "100000"],
        ["--processes", "1000"],
        ["--total-segments", "1000001", "--segment", "0"],
        ["--max-writes-per-second", "nan"],
        ["--max-writes-per-second", "inf"],
        ["--max-writes-per-second=-inf"],
        ["--max-writes-per-second", "1e400"],
    ],
)
def test_out_of_bounds_numbers_are_refused_by_the_parser(dynamo_table: object, dynamo_calls, args: list[str]) -> None:
    dynamo_calls.reset()

    with pytest.raises(CommandError, match="invalid"):
        call_command("backfill_invite_codes", *args, stdout=io.StringIO())

    assert dynamo_calls.total == 0


def test_dynamodbs_own_limit_on_total_segments_is_accepted(dynamo_table: object) -> None:
    lines = run_backfill("--total-segments", "1000000", "--segment", "999999")

    assert "INFO - Total spaces processed: 0" in lines


def test_too_many_segments_from_settings_opens_no_thread_and_reads_nothing(
    dynamo_table: object, dynamo_calls, settings
) -> None:
    settings.BACKFILL_SEGMENTS = 100_000
    threads_before = threading.active_count()
    dynamo_calls.reset()

    error, _ = run_failing()

    assert error.returncode == 2
    assert str(error) == "segments (--segments, BACKFILL_SEGMENTS) must be between 1 and 64, got 100,000"
    assert dynamo_calls.calls["Scan"] == 0
    assert threading.active_count() <= threads_before + 1


def test_machines_times_processes_may_not_pass_dynamodbs_limit(dynamo_table: object) -> None:
    error, _ = run_failing("--total-segments", "600000", "--segment", "0", "--processes", "2")

    assert error.returncode == 2
    assert "must be between 1 and 1,000,000 (DynamoDB's limit on a parallel scan), got 600,000 x 2" in str(error)


# --- replacing legacy-format codes ---------------------------------------------------------------


def legacy_coded_spaces() -> dict[str, str]:
    """Spaces with codes of the earlier formats (mapped as the earlier system mapped them), and ours."""
    spaces = {
        put_legacy_space(space_id="hexcode", name="Hex", invite_code="a3f9c2d4"): "a3f9c2d4",
        put_legacy_space(space_id="urlsafe", name="Urlsafe", invite_code="Xy-9_kQ2"): "Xy-9_kQ2",
    }
    for space_id, code in spaces.items():
        put_legacy_mapping(code=code, space_id=space_id)
        engine.invite_code_record_existing(space=Space.get(*Space.key(space_id)))
    return spaces


def test_replace_legacy_codes_gives_new_codes_to_legacy_format_spaces_only(dynamo_table: object) -> None:
    legacy = legacy_coded_spaces()
    current = space_create(owner_id="o", name="Current")
    without = put_legacy_space(name="No code")

    lines = run_backfill("--replace-legacy-codes", "--workers", "1", "--segments", "1")

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

    lines = run_backfill("--replace-legacy-codes", "--dry-run", "--workers", "1", "--segments", "1")

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

    def api_regenerates_first(**kwargs: object) -> engine.CodeChange:
        if kwargs["space_id"] == "hexcode" and not given_by_api:
            given_by_api["hexcode"] = real_regenerate(space_id="hexcode", source="api").new_code or ""
        return real_regenerate(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "invite_code_regenerate", api_regenerates_first)

    lines = run_backfill("--replace-legacy-codes", "--workers", "1", "--segments", "1")

    assert stored_code("hexcode") == given_by_api["hexcode"]  # the API's code, not replaced again
    assert "INFO - Space 'Hex' (ID: hexcode) changed its invite code since the scan; skipped" in lines
    assert "INFO - Skipped (code changed since the scan): 1" in lines
    assert "INFO - Successfully updated: 1" in lines
    assert invariant_violations() == []


def test_replace_legacy_codes_reports_failures_with_status_one_and_writes_the_report(
    dynamo_table: object, tmp_path: Path
) -> None:
    legacy_coded_spaces()
    report_path = tmp_path / "replaced.json"
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#urlsafe" in body)

    with client_hook("before-send.dynamodb", denied):
        error, lines = run_failing("--replace-legacy-codes", "--report", str(report_path))

    assert error.returncode == 1
    assert any(
        line.startswith("ERROR - Failed to replace the invite code of space 'Urlsafe' (ID: urlsafe): ")
        for line in lines
    )
    report = json.loads(report_path.read_text())
    assert report["changes"] == [
        {"space_id": "hexcode", "name": "Hex", "new_code": stored_code("hexcode"), "old_code": "a3f9c2d4"}
    ]
    assert report["summary"]["mode"] == "replace-legacy-codes"
    assert report["summary"]["failed_count"] == 1
    assert stored_code("urlsafe") == "Xy-9_kQ2"


def test_replace_legacy_codes_resumes_from_its_checkpoint_and_refuses_a_backfills(
    dynamo_table: object, tmp_path: Path
) -> None:
    legacy_coded_spaces()
    replace_checkpoint = tmp_path / "replace.json"
    backfill_checkpoint = tmp_path / "backfill.json"
    run_backfill("--checkpoint", str(backfill_checkpoint), "--segments", "2")

    error, _ = run_failing("--replace-legacy-codes", "--checkpoint", str(backfill_checkpoint), "--segments", "2")
    run_backfill("--replace-legacy-codes", "--checkpoint", str(replace_checkpoint), "--segments", "2")
    rerun = run_backfill("--replace-legacy-codes", "--checkpoint", str(replace_checkpoint), "--segments", "2")

    assert error.returncode == 2
    assert "was written by a backfill run; this is a replace-legacy-codes" in str(error)
    assert f"INFO - Checkpoint {replace_checkpoint}: 2 segment(s) already finished, 0 resumed" in rerun
    assert is_new_format(stored_code("hexcode") or "")


def test_replace_legacy_codes_never_marks_a_legacy_table_recorded(legacy_table: object) -> None:
    put_legacy_space(name="Old", invite_code="abcd2345")

    run_backfill("--replace-legacy-codes")

    assert engine.legacy_codes_recorded() is False
