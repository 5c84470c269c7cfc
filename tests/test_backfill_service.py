"""The backfill service shared by the command and the admin: its interface, races, resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from invites.audit import audit_invite_codes
from invites.backfill import BackfillConfigError, RateLimiter, SpaceOutcome, backfill_missing_codes
from invites.backfill.rate_limit import limit_writes_of_this_thread, limiting_this_thread
from invites.services import space_create
from spaces.dynamodb import TableBinding
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space
from tests.seeding import seed_legacy_spaces

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- the interface the admin uses ---------------------------------------------------------------


def test_limit_handles_that_many_spaces_and_reports_the_run_as_incomplete(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(8)
    heard: list[SpaceOutcome] = []

    report = backfill_missing_codes(dry_run=False, limit=5, on_space=heard.append, actor_id="admin-1")

    assert report.updated == 5
    assert report.missing == 5
    assert report.complete is False
    assert report.remaining_estimate is None
    assert len(report.changes) == 5
    for space_id, name, new_code in report.changes:
        assert stored_code(space_id) == new_code
        assert name.startswith("Legacy ")
    assert sorted(outcome.space_id for outcome in heard) == sorted(s for s, _, _ in report.changes)
    assert sum(1 for space_id in space_ids if stored_code(space_id)) == 5


def test_a_run_without_limit_reports_complete_with_nothing_remaining(dynamo_table: object) -> None:
    seed_legacy_spaces(3)
    space_create(owner_id="o", name="Coded")

    report = backfill_missing_codes(dry_run=False)

    assert (report.total_spaces, report.missing, report.updated) == (4, 3, 3)
    assert report.failed == []
    assert report.complete is True
    assert report.remaining_estimate == 0
    assert report.seconds > 0


def test_a_dry_run_lists_would_be_changes_without_codes(dynamo_table: object) -> None:
    (space_id,) = seed_legacy_spaces(1)

    report = backfill_missing_codes(dry_run=True)

    assert report.changes == [(space_id, "Legacy 0", None)]
    assert report.updated == 1
    assert stored_code(space_id) is None


def test_collect_changes_false_keeps_the_report_small(dynamo_table: object) -> None:
    seed_legacy_spaces(3)

    report = backfill_missing_codes(dry_run=False, collect_changes=False)

    assert report.updated == 3
    assert report.changes == []


# --- races ------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_backfills_at_once_give_each_space_exactly_one_code(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(80)
    barrier = threading.Barrier(2)
    reports = []

    def one_backfill() -> None:
        barrier.wait()
        reports.append(backfill_missing_codes(dry_run=False, segments=2, workers=3, page_size=20))

    threads = [threading.Thread(target=one_backfill) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.updated for report in reports) == 80
    assert all(report.failed == [] for report in reports)
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert audit_invite_codes(repair=False, grace_seconds=0).clean


# --- checkpoints ---------------------------------------------------------------------------------


def test_a_finished_checkpoint_makes_a_rerun_scan_nothing(dynamo_table: object, tmp_path: Path) -> None:
    seed_legacy_spaces(6)
    checkpoint = tmp_path / "backfill.json"
    backfill_missing_codes(dry_run=False, segments=3, checkpoint_path=str(checkpoint), page_size=2)

    rerun = backfill_missing_codes(dry_run=False, segments=3, checkpoint_path=str(checkpoint))

    saved = json.loads(checkpoint.read_text())
    assert all(segment["done"] for segment in saved["segments"].values())
    assert rerun.total_spaces == 0
    assert rerun.segments_skipped == 3
    assert rerun.complete is True


def test_a_checkpoint_of_another_table_or_split_is_refused(dynamo_table: object, tmp_path: Path) -> None:
    checkpoint = tmp_path / "backfill.json"
    backfill_missing_codes(dry_run=False, segments=2, checkpoint_path=str(checkpoint))

    with pytest.raises(BackfillConfigError, match="was written for table"):
        backfill_missing_codes(dry_run=False, segments=3, checkpoint_path=str(checkpoint))


def test_a_corrupt_checkpoint_is_refused_with_a_clear_error(dynamo_table: object, tmp_path: Path) -> None:
    checkpoint = tmp_path / "backfill.json"
    checkpoint.write_text("{not json")

    with pytest.raises(BackfillConfigError, match="cannot be read"):
        backfill_missing_codes(dry_run=False, checkpoint_path=str(checkpoint))


def manage_py_env(binding: TableBinding, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_SETTINGS", "PYTEST", "DYNAMODB_", "BACKFILL_"))
    }
    env.update(
        {
            "DJANGO_DEBUG": "1",
            "DYNAMODB_HOST": binding.host or "",
            "DYNAMODB_TABLE": binding.table_name,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CACHE_URL": "locmem://backfill",
            **extra,
        }
    )
    return env


def backfill_process(binding: TableBinding, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "backfill_invite_codes", *args],
        cwd=REPO_ROOT,
        env=manage_py_env(binding, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pages_finished(checkpoint: Path) -> int:
    try:
        saved = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for s in saved["segments"].values() if s["last_evaluated_key"] or s["done"])


@pytest.mark.slow
def test_kill_9_in_the_middle_then_rerun_with_the_checkpoint_finishes_the_job(
    dynamo_table: TableBinding, tmp_path: Path
) -> None:
    space_ids = seed_legacy_spaces(300)
    checkpoint = tmp_path / "backfill.json"
    slow_run = backfill_process(
        dynamo_table,
        "--checkpoint",
        str(checkpoint),
        "--segments",
        "2",
        "--workers",
        "2",
        "--max-writes-per-second",
        "60",
        BACKFILL_PAGE_SIZE="30",
    )
    deadline = time.monotonic() + 60
    while pages_finished(checkpoint) < 2 and time.monotonic() < deadline and slow_run.poll() is None:
        time.sleep(0.05)
    assert pages_finished(checkpoint) >= 2, "no two pages were checkpointed within 60 s"
    assert slow_run.poll() is None, "the first run ended before it could be killed"
    slow_run.send_signal(signal.SIGKILL)
    slow_run.communicate(timeout=10)
    given_before_rerun = sum(1 for space_id in space_ids if stored_code(space_id))
    assert 0 < given_before_rerun < 300
    # Right after the kill: every chunk was written whole or not at all.
    assert invariant_violations() == []
    after_kill = audit_invite_codes(repair=False, grace_seconds=0)
    assert after_kill.problem_count == len(after_kill.spaces_without_code) == 300 - given_before_rerun

    rerun = backfill_process(dynamo_table, "--checkpoint", str(checkpoint), "--segments", "2", "-v", "0")
    stdout, stderr = rerun.communicate(timeout=120)

    assert rerun.returncode == 0, stderr
    assert "resumed" in stdout
    scanned_again = int(next(line for line in stdout.splitlines() if "Found" in line and "total" in line).split()[-3])
    assert scanned_again < 300  # finished pages were not scanned again
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert audit_invite_codes(repair=False, grace_seconds=0).clean


@pytest.mark.slow
def test_an_unreachable_endpoint_exits_2_with_one_line_and_no_traceback(dynamo_table: TableBinding) -> None:
    from devtools.embedded_dynamodb import free_port

    dead = TableBinding(**{**dynamo_table.__dict__, "host": f"http://127.0.0.1:{free_port()}"})
    started = time.monotonic()

    process = backfill_process(dead)
    _, stderr = process.communicate(timeout=30)

    assert time.monotonic() - started < 10
    assert process.returncode == 2
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == [
        f"CommandError: DynamoDB table '{dead.table_name}' at {dead.host} cannot be reached: "
        + stderr.split("cannot be reached: ", 1)[1].strip()
    ]


# --- legacy tables ---------------------------------------------------------------------------


def test_a_targeted_run_on_a_legacy_table_does_not_mark_it_recorded(legacy_table: object) -> None:
    from invites import services as engine

    space_id = put_legacy_space(name="Targeted")
    put_legacy_space(name="Elsewhere", invite_code="zzzz2345")

    backfill_missing_codes(dry_run=False, space_ids=[space_id])

    assert engine.legacy_codes_recorded() is False


def test_a_run_with_failures_does_not_mark_a_legacy_table_recorded(
    legacy_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites import services as engine

    put_legacy_space(name="Old", invite_code="abcd2345")
    put_legacy_mapping(code="abcd2345", space_id="x")

    def broken(*, spaces: object) -> dict[str, str | None]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "invite_codes_record_existing", broken)
    report = backfill_missing_codes(dry_run=False)

    assert len(report.failed) == 1
    assert engine.legacy_codes_recorded() is False


# --- the write limiter ---------------------------------------------------------------------------


def test_the_rate_limiter_spaces_writes_at_the_requested_rate() -> None:
    clock = {"now": 100.0, "slept": 0.0}

    def fake_sleep(seconds: float) -> None:
        clock["now"] += seconds
        clock["slept"] += seconds

    limiter = RateLimiter(5, clock=lambda: clock["now"], sleep=fake_sleep)

    for _ in range(11):
        limiter.acquire()

    assert clock["slept"] == pytest.approx(2.0)


def test_a_write_larger_than_the_bucket_waits_for_its_whole_cost() -> None:
    clock = {"now": 100.0, "slept": 0.0}

    def fake_sleep(seconds: float) -> None:
        clock["now"] += seconds
        clock["slept"] += seconds

    limiter = RateLimiter(10, clock=lambda: clock["now"], sleep=fake_sleep)

    limiter.acquire(99)  # a transaction of 99 actions under a cap of 10 a second
    limiter.acquire(1)

    # One token was there at the start: 99 items go after 9.8 s, the next one 0.1 s later.
    assert clock["slept"] == pytest.approx(9.9)


def test_only_threads_of_a_limited_run_wait_for_the_limiter() -> None:
    acquired: list[tuple[str, int]] = []

    class Recorder(RateLimiter):
        def acquire(self, count: int = 1) -> None:
            acquired.append((threading.current_thread().name, count))

    class Write:
        name = "TransactWriteItems"

    class Read:
        name = "GetItem"

    three_actions = {"TransactItems": [{"Put": {}}, {"Put": {}}, {"Update": {}}]}
    other_thread = threading.Thread(target=limit_writes_of_this_thread, args=(Write(), three_actions))
    limit_writes_of_this_thread(Write(), three_actions)
    with limiting_this_thread(Recorder(1)):
        limit_writes_of_this_thread(Write(), three_actions)
        limit_writes_of_this_thread(Read(), {})
        other_thread.start()
        other_thread.join()
    limit_writes_of_this_thread(Write(), three_actions)

    # Only this thread, while limited, waited: for one token per item written.
    assert acquired == [(threading.current_thread().name, 3)]


def test_an_error_without_a_response_has_no_error_code_and_does_not_crash() -> None:
    from botocore.exceptions import ReadTimeoutError
    from pynamodb.exceptions import ScanError

    from spaces.dynamodb import error_code

    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    timeout.response = None  # type: ignore[attr-defined]

    assert error_code(ScanError("Failed to scan table", timeout)) is None
