"""``manage.py backfill_invite_codes``: the guide's log lines, exit statuses and options."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from invites import services as engine
from invites.services import space_create
from spaces.dynamodb import DynamoUnavailable
from tests.faults import Throttler, client_hook, failing_when
from tests.invariants import invariant_violations, scan_all, stored_code
from tests.legacy import put_legacy_space

pytestmark = pytest.mark.django_db

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - ")
RULE = "INFO - " + "=" * 60


def run_backfill(*args: str) -> list[str]:
    """Run the command; its log lines without the timestamps."""
    out = io.StringIO()
    call_command("backfill_invite_codes", *args, stdout=out)
    return log_lines(out.getvalue())


def log_lines(text: str) -> list[str]:
    lines = text.splitlines()
    assert all(TIMESTAMP.match(line) for line in lines), lines
    return [TIMESTAMP.sub("", line) for line in lines]


def run_failing(*args: str) -> tuple[CommandError, list[str]]:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("backfill_invite_codes", *args, stdout=out)
    return raised.value, log_lines(out.getvalue())


def two_spaces_without_codes() -> tuple[str, str]:
    # Ids in sort order, so that a one-worker run logs them in this order.
    return (
        put_legacy_space(space_id="abc123", name="My Workspace"),
        put_legacy_space(space_id="def456", name="Team Hub"),
    )


# --- the guide's output ------------------------------------------------------------------


def test_dry_run_prints_the_guides_lines_and_writes_nothing(dynamo_table: object, dynamo_calls) -> None:
    two_spaces_without_codes()
    space_create(owner_id="o", name="Has a code")
    dynamo_calls.reset()

    lines = run_backfill("--dry-run", "--workers", "1", "--segments", "1")

    assert lines == [
        RULE,
        "INFO - Starting invite code backfill process",
        RULE,
        "INFO - DRY RUN MODE - No changes will be made",
        "INFO - Scanning DynamoDB for all spaces...",
        "INFO - Space 'My Workspace' (ID: abc123) is missing invite code",
        "INFO - [DRY RUN] Would add invite code to space 'My Workspace' (ID: abc123)",
        "INFO - Space 'Team Hub' (ID: def456) is missing invite code",
        "INFO - [DRY RUN] Would add invite code to space 'Team Hub' (ID: def456)",
        "INFO - Found 3 total spaces",
        "INFO - Found 2 spaces without invite codes",
        RULE,
        "INFO - BACKFILL SUMMARY",
        RULE,
        "INFO - Total spaces processed: 2",
        "INFO - Successfully updated: 2",
        "INFO - Would update: 2; nothing was written",
        "INFO - Failed: 0",
        "INFO - ",
        "INFO - *** DRY RUN COMPLETE - No changes were made ***",
        "INFO - Run without --dry-run to apply changes",
    ]
    assert dynamo_calls.writes == 0
    assert stored_code("abc123") is None


def test_backfill_prints_the_guides_lines_and_gives_each_space_a_code(dynamo_table: object) -> None:
    two_spaces_without_codes()

    lines = run_backfill("--workers", "1", "--segments", "1")

    first, second = stored_code("abc123"), stored_code("def456")
    assert lines == [
        RULE,
        "INFO - Starting invite code backfill process",
        RULE,
        "INFO - Scanning DynamoDB for all spaces...",
        "INFO - Space 'My Workspace' (ID: abc123) is missing invite code",
        f"INFO - ✓ Added invite code '{first}' to space 'My Workspace' (ID: abc123)",
        "INFO - Space 'Team Hub' (ID: def456) is missing invite code",
        f"INFO - ✓ Added invite code '{second}' to space 'Team Hub' (ID: def456)",
        "INFO - Found 2 total spaces",
        "INFO - Found 2 spaces without invite codes",
        RULE,
        "INFO - BACKFILL SUMMARY",
        RULE,
        "INFO - Total spaces processed: 2",
        "INFO - Successfully updated: 2",
        "INFO - Failed: 0",
        "INFO - ",
        "INFO - *** BACKFILL COMPLETE ***",
    ]
    assert invariant_violations(require_codes=True) == []


def test_an_empty_table_says_no_spaces_were_found(dynamo_table: object) -> None:
    lines = run_backfill()

    assert "INFO - No spaces found in the database" in lines
    assert "INFO - Total spaces processed: 0" in lines


def test_a_table_where_every_space_has_a_code_says_so(dynamo_table: object, dynamo_calls) -> None:
    space_create(owner_id="o", name="Coded")
    dynamo_calls.reset()

    lines = run_backfill()

    assert "INFO - Found 1 total spaces" in lines
    assert "INFO - All spaces already have invite codes!" in lines
    assert dynamo_calls.writes == 0


def test_a_second_run_changes_nothing(dynamo_table: object, dynamo_calls) -> None:
    space_ids = [put_legacy_space(name=f"Once {n}") for n in range(5)]
    run_backfill()
    codes_after_first = {space_id: stored_code(space_id) for space_id in space_ids}
    dynamo_calls.reset()

    lines = run_backfill()

    assert "INFO - All spaces already have invite codes!" in lines
    assert "INFO - Successfully updated: 0" in lines
    assert dynamo_calls.writes == 0
    assert {space_id: stored_code(space_id) for space_id in space_ids} == codes_after_first


def test_per_space_lines_above_the_threshold_need_verbosity_two(dynamo_table: object) -> None:
    for n in range(5):
        put_legacy_space(name=f"Many {n}")

    quiet = run_backfill("--dry-run", "--per-space-log-limit", "2")
    chatty = run_backfill("--dry-run", "--per-space-log-limit", "2", "-v", "2")

    assert sum("is missing invite code" in line for line in quiet) == 2
    assert "INFO - More than 2 spaces without invite codes: further per-space lines only with -v 2" in quiet
    assert "INFO - Found 5 spaces without invite codes" in quiet
    assert sum("is missing invite code" in line for line in chatty) == 5


def test_verbosity_zero_keeps_only_the_counts(dynamo_table: object) -> None:
    put_legacy_space(name="Quiet")

    lines = run_backfill("-v", "0")

    assert not any("is missing invite code" in line for line in lines)
    assert "INFO - Successfully updated: 1" in lines


# --- failures and exit statuses --------------------------------------------------------------


def test_a_failing_space_is_logged_the_run_goes_on_and_the_exit_status_is_one(dynamo_table: object) -> None:
    put_legacy_space(space_id="good1", name="Good one")
    put_legacy_space(space_id="broken", name="Broken")
    put_legacy_space(space_id="good2", name="Good two")
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#broken" in body)

    with client_hook("before-send.dynamodb", denied):
        error, lines = run_failing()

    assert error.returncode == 1
    assert stored_code("good1") and stored_code("good2")
    assert stored_code("broken") is None
    failure_lines = [line for line in lines if line.startswith("ERROR - ")]
    assert len(failure_lines) == 1
    assert failure_lines[0].startswith("ERROR - Failed to add invite code to space 'Broken' (ID: broken): ")
    assert "AccessDeniedException" in failure_lines[0]
    assert "INFO - Successfully updated: 2" in lines
    assert "INFO - Failed: 1" in lines
    assert any(line.startswith("INFO -   - 'Broken' (ID: broken): ") for line in lines)
    assert invariant_violations() == []


def test_an_unreachable_endpoint_exits_with_status_two_quickly(dynamo_table: object, connect_with) -> None:
    from devtools.embedded_dynamodb import free_port

    connect_with(DYNAMODB_HOST=f"http://127.0.0.1:{free_port()}")  # the app's retries; the probe is quick anyway
    started = time.monotonic()
    error, _ = run_failing()

    assert time.monotonic() - started < 10
    assert error.returncode == 2
    assert "cannot be reached" in str(error)
    assert "\n" not in str(error)


def test_a_missing_table_exits_with_status_two(dynamo_table: object, connect_with) -> None:
    connect_with(DYNAMODB_TABLE="no-such-table")

    error, _ = run_failing()

    assert error.returncode == 2
    assert str(error) == f"DynamoDB table 'no-such-table' does not exist at {dynamo_table.host}"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "1"], "segment 1 (--segment) needs the number of segments: pass --total-segments N"),
        (["--total-segments", "3"], "split into 3 segments (--total-segments) but this worker's segment is unknown"),
        (["--segment", "3", "--total-segments", "2"], "segment 3 (--segment) must be between 0 and 1"),
        (["--dry-run", "--checkpoint", "x.json"], "a dry run does not write a checkpoint"),
        (["--space-id", "bad id!"], "not a space id: 'bad id!'"),
        (["--segment", "0", "--total-segments", "2", "--segments", "4"], "this machine scans one segment only"),
    ],
)
def test_unusable_arguments_exit_with_status_two(dynamo_table: object, args: list[str], message: str) -> None:
    error, _ = run_failing(*args)

    assert error.returncode == 2
    assert message in str(error)


@pytest.mark.parametrize("args", [["--workers", "0"], ["--limit", "-1"], ["--max-writes-per-second", "nan"]])
def test_malformed_numbers_are_refused_by_the_parser(dynamo_table: object, args: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("backfill_invite_codes", *args, stdout=io.StringIO())


# --- races --------------------------------------------------------------------------------


def test_a_code_given_by_the_api_after_the_scan_is_kept_and_counted_as_skipped(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    racy = put_legacy_space(space_id="racy", name="Racy")
    calm = put_legacy_space(space_id="calm", name="Calm")
    real_assign = engine.invite_code_assign_if_missing
    given_by_api: list[str] = []

    def api_regenerates_first(**kwargs: object) -> list[engine.CodeChange]:
        if not given_by_api:
            given_by_api.append(engine.invite_code_regenerate(space_id=racy, source="api").new_code or "")
        return real_assign(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "invite_code_assign_if_missing", api_regenerates_first)

    lines = run_backfill("--workers", "1", "--segments", "1")

    assert stored_code(racy) == given_by_api[0]
    assert stored_code(calm) is not None
    assert "INFO - Skipped (already had a code): 1" in lines
    assert "INFO - Successfully updated: 1" in lines
    assert "INFO - Failed: 0" in lines
    assert invariant_violations(require_codes=True) == []


# --- throttling --------------------------------------------------------------------------


@pytest.mark.slow
def test_throttled_calls_are_retried_and_never_counted_as_failures(dynamo_table: object) -> None:
    # Adaptive retries slow the whole client down after each throttle, so keep this small.
    space_ids = [put_legacy_space(name=f"Throttled {n}", with_owner_membership=False) for n in range(12)]
    throttler = Throttler(share=0.4)

    with client_hook("before-send.dynamodb", throttler):
        lines = run_backfill("--workers", "4", "--segments", "2")

    assert throttler.injected >= 3
    assert "INFO - Failed: 0" in lines
    assert "INFO - Successfully updated: 12" in lines
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


# --- targeting, splitting, reporting -------------------------------------------------------------


def test_space_id_targets_only_the_named_spaces(dynamo_table: object) -> None:
    chosen = put_legacy_space(name="Chosen")
    other = put_legacy_space(name="Other")

    lines = run_backfill("--space-id", chosen, "--space-id", chosen)

    assert stored_code(chosen) is not None
    assert stored_code(other) is None
    assert "INFO - Successfully updated: 1" in lines


def test_an_unknown_space_id_is_a_failure_of_that_space(dynamo_table: object) -> None:
    error, lines = run_failing("--space-id", "nosuchspace")

    assert error.returncode == 1
    assert "ERROR - Failed to add invite code to space '' (ID: nosuchspace): Space nosuchspace not found" in lines


def test_limit_stops_after_that_many_spaces_and_a_rerun_continues(dynamo_table: object) -> None:
    space_ids = [put_legacy_space(name=f"Limited {n}", with_owner_membership=False) for n in range(5)]

    lines = run_backfill("--limit", "3")

    assert "INFO - Successfully updated: 3" in lines
    assert "INFO - Stopped before the end of the table (--limit); run again to continue" in lines
    assert sum(1 for space_id in space_ids if stored_code(space_id)) == 3
    run_backfill("--limit", "3")
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


def test_segments_split_across_machines_cover_the_table_without_overlap(dynamo_table: object) -> None:
    space_ids = [put_legacy_space(name=f"Split {n}", with_owner_membership=False) for n in range(30)]

    runs = [run_backfill("--segment", str(i), "--total-segments", "3") for i in range(3)]

    updated = [int(next(line for line in r if "Successfully updated" in line).rsplit(" ", 1)[1]) for r in runs]
    assert sum(updated) == 30
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


def test_the_report_file_lists_every_change_and_failure_with_counts(dynamo_table: object, tmp_path: Path) -> None:
    put_legacy_space(space_id="good", name="Good")
    put_legacy_space(space_id="broken", name="Broken")
    report_path = tmp_path / "report.json"
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#broken" in body)

    with client_hook("before-send.dynamodb", denied):
        run_failing("--report", str(report_path))

    report = json.loads(report_path.read_text())
    assert report["changes"] == [{"space_id": "good", "name": "Good", "new_code": stored_code("good")}]
    summary = report["summary"]
    assert summary["updated"] == 1
    assert summary["failed_count"] == 1
    assert summary["failures"][0]["space_id"] == "broken"
    assert summary["complete"] is True
    assert summary["total_spaces"] == summary["missing"] == 2
    assert 0 < summary["seconds"] < 60


def test_a_report_file_that_cannot_be_written_exits_with_status_two(dynamo_table: object, tmp_path: Path) -> None:
    error, _ = run_failing("--report", str(tmp_path / "missing-dir" / "report.json"))

    assert error.returncode == 2
    assert "cannot write the report file" in str(error)


def test_max_writes_per_second_still_completes_the_backfill(dynamo_table: object) -> None:
    space_ids = [put_legacy_space(name=f"Gentle {n}", with_owner_membership=False) for n in range(3)]

    lines = run_backfill("--max-writes-per-second", "200")

    assert "INFO - Successfully updated: 3" in lines
    assert all(stored_code(space_id) for space_id in space_ids)


# --- legacy tables -----------------------------------------------------------------------


def test_on_a_legacy_table_existing_codes_are_recorded_and_the_table_is_marked(legacy_table: object) -> None:
    holder = put_legacy_space(name="Old code", invite_code="a3f9c2d4")
    put_legacy_space(name="No code")
    assert engine.legacy_codes_recorded() is False

    lines = run_backfill()

    assert "INFO - Recorded 1 existing invite codes" in lines
    assert "INFO - Every existing invite code is now recorded" in lines
    assert engine.legacy_codes_recorded() is True
    assert stored_code(holder) == "a3f9c2d4"
    assert invariant_violations(require_codes=True) == []


def test_a_duplicate_legacy_code_is_reported_and_left_for_the_audit(legacy_table: object) -> None:
    put_legacy_space(space_id="aaa", name="First", invite_code="dupe2345")
    put_legacy_space(space_id="bbb", name="Second", invite_code="dupe2345")

    lines = run_backfill("--workers", "1", "--segments", "1")

    assert (
        "WARNING - Space 'Second' (ID: bbb) holds invite code 'dupe2345', already claimed by space aaa; "
        "run audit_invite_codes --repair"
    ) in lines
    assert "INFO - Codes held by two spaces: 1 (run audit_invite_codes --repair)" in lines


def test_a_dry_run_on_a_legacy_table_records_nothing(legacy_table: object, dynamo_calls) -> None:
    put_legacy_space(name="Old code", invite_code="a3f9c2d4")
    dynamo_calls.reset()

    run_backfill("--dry-run")

    assert dynamo_calls.writes == 0
    assert not any(item["PK"].startswith("CODE#") for item in scan_all())
    assert engine.legacy_codes_recorded() is False


def test_dynamo_going_away_mid_run_exits_with_status_two(dynamo_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    put_legacy_space(name="Doomed")

    def unreachable(**_: object) -> list[engine.CodeChange]:
        raise DynamoUnavailable("DynamoDB table 'x' at y cannot be reached: connection refused")

    monkeypatch.setattr(engine, "invite_code_assign_if_missing", unreachable)

    error, _ = run_failing()

    assert error.returncode == 2
    assert "cannot be reached" in str(error)


# --- the progress bar ---------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_on_stderr_when_it_is_a_terminal(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_legacy_space(name="Shown")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    lines = run_backfill()

    assert "Spaces scanned" in terminal.getvalue()
    assert not any("Spaces scanned" in line for line in lines)


def final_bar(terminal: Terminal) -> str:
    """The bar as the terminal shows it last: the text after the last carriage return."""
    return terminal.getvalue().rstrip("\n").rsplit("\r", 1)[-1]


def test_the_bar_counts_spaces_of_an_estimated_total_with_rate_and_time_left(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(6):
        put_legacy_space(name=f"Counted {n}")  # each with its owner's membership: 12 items, 6 spaces
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    run_backfill("--segments", "1", "--workers", "1")

    # DescribeTable's item count (all item kinds), scaled by the share of spaces the scan saw.
    bar = final_bar(terminal)
    assert re.match(r"Spaces scanned: 100%\|#+\| 6/~6 spaces \(total estimated\) \[\d\d:\d\d<\d\d:\d\d, ", bar), bar
    assert bar.endswith(" spaces/s]"), bar


def test_targeted_runs_show_an_exact_total(dynamo_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = [put_legacy_space(name=f"Chosen {n}") for n in range(3)]
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    run_backfill(*[arg for space_id in chosen for arg in ("--space-id", space_id)])

    assert re.match(r"Spaces scanned: 100%\|#+\| 3/3 spaces \[", final_bar(terminal))


def test_log_lines_never_land_inside_the_bar_on_a_terminal(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(40):
        put_legacy_space(name=f"Interleaved {n}", with_owner_membership=False)
    terminal = Terminal()  # stdout and stderr on one terminal, as in a shell
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr("sys.stderr", terminal)

    call_command("backfill_invite_codes", "-v", "2", "--segments", "2")

    # Each line as the terminal shows it: what follows the last carriage return.
    shown = [line.rsplit("\r", 1)[-1] for line in terminal.getvalue().split("\n") if line.strip("\r ")]
    log_lines_shown = [line for line in shown if " - INFO - " in line]
    assert len(log_lines_shown) >= 80
    assert all(TIMESTAMP.match(line) for line in log_lines_shown), [line for line in log_lines_shown][:3]
    assert not any("spaces/s" in line for line in log_lines_shown)


def test_no_progress_bar_when_stderr_is_not_a_terminal(dynamo_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    put_legacy_space(name="Hidden")
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)

    run_backfill()

    assert pipe.getvalue() == ""


# --- what the operator reads: the dry run's plain line, the exit statuses ------------------------


def test_a_dry_run_says_plainly_that_nothing_was_written(dynamo_table: object) -> None:
    two_spaces_without_codes()

    lines = run_backfill("--dry-run")

    updated = lines.index("INFO - Successfully updated: 2")  # the guide's line, kept
    assert lines[updated + 1] == "INFO - Would update: 2; nothing was written"


def test_a_real_run_does_not_say_would_update(dynamo_table: object) -> None:
    two_spaces_without_codes()

    lines = run_backfill()

    assert not any("Would update" in line for line in lines)


def test_help_lists_the_exit_statuses() -> None:
    from invites.management.commands.backfill_invite_codes import Command

    text = Command().create_parser("manage.py", "backfill_invite_codes").format_help()

    statuses = text.split("exit status:", 1)[1]
    assert re.search(r"^  0  nothing failed", statuses, re.MULTILINE)
    assert re.search(r"^  1  some spaces failed", statuses, re.MULTILINE)
    assert re.search(r"^  2  unusable arguments", statuses, re.MULTILINE)
