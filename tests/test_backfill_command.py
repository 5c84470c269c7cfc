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

from invites import assignment
from invites import services as engine
from invites.management.commands import backfill_invite_codes as backfill_command
from invites.services import space_create
from spaces.exceptions import DynamoUnavailable
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

    lines = run_backfill("--dry-run", "--workers", "1")

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

    lines = run_backfill("--workers", "1")

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


def test_per_space_lines_above_the_threshold_need_verbosity_two(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        put_legacy_space(name=f"Many {n}")
    monkeypatch.setattr(backfill_command, "PER_SPACE_LINES", 2)  # 1,000 in production

    quiet = run_backfill("--dry-run")
    chatty = run_backfill("--dry-run", "-v", "2")

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
    assert str(error).startswith("DynamoDB table 'no-such-table' does not exist")
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segment", "1"], "segment 1 (--segment) needs --total-segments N or BACKFILL_TOTAL_SEGMENTS"),
        (["--total-segments", "3"], "split into 3 segments (--total-segments) but this worker's segment is unknown"),
        (["--segment", "3", "--total-segments", "2"], "segment 3 (--segment) must be from 0 to 1"),
        (["--space-id", "abc", "--segment", "0", "--total-segments", "2"], "--space-id reads those spaces only"),
    ],
)
def test_unusable_arguments_exit_with_status_two(dynamo_table: object, args: list[str], message: str) -> None:
    error, _ = run_failing(*args)

    assert error.returncode == 2
    assert message in str(error)


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "0"],
        ["--workers", "129"],
        ["--limit", "-1"],
        ["--space-id", "bad id!"],
        ["--total-segments", "1000001", "--segment", "0"],
        ["--max-writes-per-second", "nan"],
        ["--max-writes-per-second", "inf"],
        ["--max-writes-per-second=-1"],
    ],
)
def test_malformed_values_are_refused_by_the_parser_before_any_call(
    dynamo_table: object, dynamo_calls, args: list[str]
) -> None:
    dynamo_calls.reset()

    with pytest.raises(CommandError, match="invalid"):
        call_command("backfill_invite_codes", *args, stdout=io.StringIO())

    assert dynamo_calls.total == 0


def test_dynamodbs_own_limit_on_total_segments_is_accepted(dynamo_table: object, settings) -> None:
    settings.DYNAMODB_SCAN_SPLIT = 64  # not past the limit: each segment is then read whole
    lines = run_backfill("--total-segments", "1000000", "--segment", "999999")

    assert "INFO - Total spaces processed: 0" in lines


# --- races --------------------------------------------------------------------------------


def test_a_code_given_by_the_api_after_the_scan_is_kept_and_counted_as_skipped(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    racy = put_legacy_space(space_id="racy", name="Racy")
    calm = put_legacy_space(space_id="calm", name="Calm")
    real_assign = assignment.invite_code_assign_if_missing
    given_by_api: list[str] = []

    def api_regenerates_first(**kwargs) -> list[engine.SpaceOutcome]:
        if not given_by_api:
            given_by_api.append(engine.invite_code_regenerate(space_id=racy, source="api").new_code or "")
        return real_assign(**kwargs)

    monkeypatch.setattr(assignment, "invite_code_assign_if_missing", api_regenerates_first)

    lines = run_backfill("--workers", "1")

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
        lines = run_backfill("--workers", "4")

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


@pytest.mark.parametrize("split", [1, 4])
def test_segments_split_across_machines_cover_the_table_without_overlap(dynamo_table: object, settings, split) -> None:
    settings.DYNAMODB_SCAN_SPLIT = split  # each machine reads its segment as `split` smaller ones
    space_ids = [put_legacy_space(name=f"Split {n}", with_owner_membership=False) for n in range(30)]

    runs = [run_backfill("--segment", str(i), "--total-segments", "3") for i in range(3)]

    updated = [int(next(line for line in r if "Successfully updated" in line).rsplit(" ", 1)[1]) for r in runs]
    found = [int(next(line for line in r if line.endswith(" total spaces")).split()[-3]) for r in runs]
    assert sum(updated) == 30
    assert sum(found) == 30  # no space read by two machines
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


def test_the_report_file_has_a_json_line_per_change_and_failure_then_the_summary(
    dynamo_table: object, tmp_path: Path
) -> None:
    put_legacy_space(space_id="good", name="Good")
    put_legacy_space(space_id="broken", name="Broken")
    report_path = tmp_path / "report.jsonl"
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#broken" in body)

    with client_hook("before-send.dynamodb", denied):
        run_failing("--report", str(report_path))

    *entries, last = [json.loads(line) for line in report_path.read_text().splitlines()]
    changed = {"space_id": "good", "status": "updated", "new_code": stored_code("good"), "name": "Good"}
    assert changed in entries
    (failure,) = [entry for entry in entries if entry["status"] == "failed"]
    assert failure["space_id"] == "broken" and "AccessDeniedException" in failure["error"]
    summary = last["summary"]
    assert (summary["updated"], summary["failed"], summary["complete"]) == (1, 1, True)
    assert summary["scanned"] == summary["missing"] == 2
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


def test_a_dry_run_on_a_legacy_table_records_nothing(legacy_table: object, dynamo_calls) -> None:
    put_legacy_space(name="Old code", invite_code="a3f9c2d4")
    dynamo_calls.reset()

    run_backfill("--dry-run")

    assert dynamo_calls.writes == 0
    assert not any(item["PK"].startswith("CODE#") for item in scan_all())
    assert engine.legacy_codes_recorded() is False


def test_dynamo_going_away_mid_run_exits_with_status_two(dynamo_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    put_legacy_space(name="Doomed")

    def unreachable(**_: object) -> list[engine.SpaceOutcome]:
        raise DynamoUnavailable("DynamoDB table 'x' at y cannot be reached: connection refused")

    monkeypatch.setattr(assignment, "invite_code_assign_if_missing", unreachable)

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

    run_backfill("--workers", "1")

    # DescribeTable's item count (all item kinds), scaled by the share of spaces the scan saw.
    bar = final_bar(terminal)
    assert re.match(r"Spaces scanned: 100%\|#+\| 6/~6 spaces \(total estimated\) \[\d\d:\d\d<\d\d:\d\d, ", bar), bar
    assert bar.endswith(" spaces/s]"), bar


def test_the_estimated_total_is_set_by_the_first_page_and_never_goes_down() -> None:
    bar, on_page = backfill_command._progress_bar(0, items=3000, segments=1)
    totals = []

    for spaces, items_read in [(500, 1000), (100, 1000), (400, 1000)]:  # shares of spaces: 1/2, then lower
        on_page(spaces, items_read)
        totals.append(bar.total)

    assert totals == [1500, 1500, 1500]


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

    call_command("backfill_invite_codes", "-v", "2")

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


def test_help_says_a_rerun_is_the_resume_and_lists_the_exit_statuses() -> None:
    from invites.management.commands.backfill_invite_codes import Command

    text = Command().create_parser("manage.py", "backfill_invite_codes").format_help()

    assert "A rerun is the resume" in text
    statuses = text.split("exit status:", 1)[1]
    assert re.search(r"^  0  nothing failed", statuses, re.MULTILINE)
    assert re.search(r"^  1  some spaces failed", statuses, re.MULTILINE)
    assert re.search(r"^  2  unusable arguments", statuses, re.MULTILINE)
