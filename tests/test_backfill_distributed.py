"""A backfill across machines and processes: progress in DynamoDB (``--run``), segments from the scheduler,
the legacy-codes flag set once at the end, duplicate, stale and killed workers (real processes)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from invites import services as engine
from invites.audit import audit_invite_codes
from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.report import PageTally
from invites.backfill.run_state import RunProgress, RunShape, run_register, run_status
from spaces import keys
from spaces.dynamodb import TableBinding
from spaces.models import BackfillRunItem, TableFlag
from tests.faults import client_hook, failing_when
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_mapping, put_legacy_space
from tests.seeding import seed_legacy_spaces
from tests.test_backfill_command import run_backfill, run_failing
from tests.test_backfill_service import REPO_ROOT, manage_py_env

pytestmark = pytest.mark.django_db

MANAGE_PY = str(REPO_ROOT / "manage.py")


def run_name() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"


def worker(
    binding: TableBinding, machine_dir: Path, *args: str, index: int | None = None, **env: str
) -> subprocess.Popen[str]:
    """One worker as a scheduler starts it: its own working directory, its index in the environment."""
    machine_dir.mkdir(parents=True, exist_ok=True)
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    return subprocess.Popen(  # our own interpreter and manage.py
        [sys.executable, MANAGE_PY, "backfill_invite_codes", *args],
        cwd=machine_dir,
        env=manage_py_env(binding, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def segment_item(name: str, segment: int) -> BackfillRunItem | None:
    try:
        return BackfillRunItem.get(*BackfillRunItem.segment_key(name, segment), consistent_read=True)
    except BackfillRunItem.DoesNotExist:
        return None


def found_total(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if "Found" in line and "total spaces" in line)
    return int(line.split("Found ", 1)[1].split()[0])


def legacy_table_with_work(spaces_without_codes: int) -> list[str]:
    """Legacy spaces without codes, and two with codes the earlier system mapped (recorded by the run)."""
    space_ids = seed_legacy_spaces(spaces_without_codes)
    for code in ("abcd2345", "efgh2345"):
        holder = put_legacy_space(name=f"Coded {code}", invite_code=code, with_owner_membership=False)
        put_legacy_mapping(code=code, space_id=holder)
        space_ids.append(holder)
    return space_ids


def assert_run_state_consistent(name: str, *, spaces: int, total_segments: int) -> None:
    status = run_status(name=name)
    assert status is not None
    assert status.segments_done == total_segments == len([s for s in status.segments if s.done])
    assert status.totals()["scanned"] == spaces  # every page counted once, whoever wrote it
    for segment in status.segments:
        counts = segment.counts
        assert counts["updated"] + counts["skipped"] + counts["failed"] == counts["missing"], segment


# --- N machines ----------------------------------------------------------------------------


@pytest.mark.slow
def test_n_workers_with_their_own_index_cover_the_table_and_set_the_flag_once(
    legacy_table: TableBinding, tmp_path: Path
) -> None:
    space_ids = legacy_table_with_work(120)
    name = run_name()

    workers = [
        worker(legacy_table, tmp_path / f"machine-{i}", "--run", name, "-v", "0", index=i, BACKFILL_TOTAL_SEGMENTS="3")
        for i in range(3)
    ]
    results = [finish(process) for process in workers]

    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert engine.legacy_codes_recorded() is True
    markers = [out for _, out, _ in results if "Every existing invite code is now recorded" in out]
    assert len(markers) == 1  # the worker that finished the last segment, and only it
    flag = TableFlag.get(*TableFlag.key(keys.LEGACY_CODES_RECORDED_FLAG), consistent_read=True)
    assert flag.set_by == f"backfill_invite_codes --run {name}"
    assert_run_state_consistent(name, spaces=len(space_ids), total_segments=3)
    assert sum(found_total(out) for _, out, _ in results) == len(space_ids)


@pytest.mark.slow
def test_a_killed_worker_is_replaced_elsewhere_and_resumes_from_the_run_state(
    legacy_table: TableBinding, tmp_path: Path
) -> None:
    space_ids = seed_legacy_spaces(300)
    name = run_name()
    common = ("--run", name, "--workers", "2")
    victim = worker(
        legacy_table, tmp_path / "machine-a", *common, "--max-writes-per-second", "60",
        index=0, BACKFILL_TOTAL_SEGMENTS="2", BACKFILL_PAGE_SIZE="20",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and victim.poll() is None:
        item = segment_item(name, 0)
        if item is not None and (item.pages or 0) >= 2:
            break
        time.sleep(0.05)
    assert victim.poll() is None, "the worker ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)
    before = segment_item(name, 0)
    assert before is not None and not before.done and before.pages >= 2
    assert invariant_violations() == []  # right after the kill: every transaction whole or absent

    replacement = worker(
        legacy_table, tmp_path / "machine-b", *common, index=0, BACKFILL_TOTAL_SEGMENTS="2", BACKFILL_PAGE_SIZE="20"
    )
    other = worker(
        legacy_table, tmp_path / "machine-c", *common, index=1, BACKFILL_TOTAL_SEGMENTS="2", BACKFILL_PAGE_SIZE="20"
    )
    (code, stdout, stderr), (other_code, _, other_err) = finish(replacement), finish(other)

    assert (code, other_code) == (0, 0), stderr + other_err
    assert f"Run '{name}': 0 segment(s) already finished, 1 resumed" in stdout
    after = segment_item(name, 0)
    assert after is not None and after.done
    # The replacement read only the pages the victim had not finished: no finished page twice.
    assert found_total(stdout) == after.scanned - before.scanned
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []  # right away, no repair
    assert audit_invite_codes(repair=False, grace_seconds=0).clean
    assert engine.legacy_codes_recorded() is True
    assert_run_state_consistent(name, spaces=300, total_segments=2)


@pytest.mark.slow
def test_two_workers_with_the_same_index_one_leaves_the_segment_to_the_other(
    legacy_table: TableBinding, tmp_path: Path
) -> None:
    space_ids = seed_legacy_spaces(300)
    name = run_name()
    args = ("--run", name, "--workers", "2", "--max-writes-per-second", "60")
    settings_env = {"BACKFILL_TOTAL_SEGMENTS": "2", "BACKFILL_PAGE_SIZE": "20"}

    twins = [worker(legacy_table, tmp_path / f"twin-{n}", *args, index=0, **settings_env) for n in range(2)]
    neighbour = worker(legacy_table, tmp_path / "machine-1", "--run", name, index=1, **settings_env)
    twin_results = [finish(process) for process in twins]
    code, _, stderr = finish(neighbour)

    assert [c for c, _, _ in twin_results] == [0, 0], [err for _, _, err in twin_results]
    assert code == 0, stderr
    left = [out for _, out, _ in twin_results if "Segment 0 was advanced by another worker (" in out]
    assert len(left) == 1, [out[-600:] for _, out, _ in twin_results]
    assert "of the run; left to it" in left[0]
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert engine.legacy_codes_recorded() is True
    assert_run_state_consistent(name, spaces=300, total_segments=2)


@pytest.mark.slow
def test_a_killed_worker_process_ends_its_machine_with_status_two_and_a_rerun_finishes(
    dynamo_table: TableBinding, tmp_path: Path
) -> None:
    space_ids = seed_legacy_spaces(120)
    name = run_name()
    args = ("--run", name, "--processes", "2", "--workers", "2")
    # 60 item writes a second per process: a page of 20 spaces (60 actions) a second.
    parent = worker(
        dynamo_table, tmp_path / "machine", *args, "--max-writes-per-second", "120", BACKFILL_PAGE_SIZE="20"
    )
    children = worker_processes_of(parent.pid, count=2, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ((item := segment_item(name, 1)) and (item.pages or 0) >= 1):
        time.sleep(0.05)
    os.kill(children[1], signal.SIGKILL)

    code, _, stderr = finish(parent)
    rerun_code, rerun_out, rerun_err = finish(worker(dynamo_table, tmp_path / "machine", *args, "-v", "0"))

    assert code == 2
    assert stderr.strip().startswith("CommandError: worker process 1 (scan segment 1 of 2) was killed by signal 9")
    assert "Traceback" not in stderr
    assert rerun_code == 0, rerun_err
    assert "resumed" in rerun_out
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


def worker_processes_of(parent_pid: int, *, count: int, timeout: float) -> list[int]:
    """The multiprocessing children of ``parent_pid`` (not its resource tracker), in start order."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent_pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                found.append(int(entry.name))
        if len(found) >= count:
            return sorted(found)
        time.sleep(0.05)
    raise AssertionError(f"{count} worker processes of {parent_pid} did not start within {timeout} s")


# --- the run's state, in process -------------------------------------------------------------


def test_a_stale_worker_can_never_move_a_segment_backwards(dynamo_table: object) -> None:
    name = run_name()
    run_register(name=name, shape=RunShape("backfill", 2, 1, 2))
    first = RunProgress(name, kind="backfill", total_segments=2, segments=[0])
    stale = RunProgress(name, kind="backfill", total_segments=2, segments=[0])  # read the same page counter

    assert first.advance(0, {"PK": {"S": "SPACE#b"}, "SK": {"S": "METADATA"}}, PageTally(scanned=3)) is True
    assert stale.advance(0, {"PK": {"S": "SPACE#a"}, "SK": {"S": "METADATA"}}, PageTally(scanned=5)) is False
    assert stale.advance(0, None, PageTally(scanned=5)) is False  # nor mark it done

    item = segment_item(name, 0)
    assert item is not None
    assert (item.pages, item.scanned, item.done) == (1, 3, False)
    assert RunProgress(name, kind="backfill", total_segments=2, segments=[0]).start_key(0) == {
        "PK": {"S": "SPACE#b"},
        "SK": {"S": "METADATA"},
    }


def test_exactly_one_worker_finishes_the_run_when_all_segments_end_at_once(dynamo_table: object) -> None:
    name = run_name()
    total = 12
    run_register(name=name, shape=RunShape("backfill", total, 1, total))
    progresses = [RunProgress(name, kind="backfill", total_segments=total, segments=[i]) for i in range(total)]
    barrier = threading.Barrier(total)

    def finish_segment(index: int) -> None:
        barrier.wait()
        assert progresses[index].advance(index, None, PageTally(scanned=1))

    threads = [threading.Thread(target=finish_segment, args=(i,)) for i in range(total)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(progress.completed_run for progress in progresses) == 1
    status = run_status(name=name)
    assert status is not None and status.segments_done == total and status.complete


def test_a_worker_started_with_another_shape_is_refused(dynamo_table: object) -> None:
    name = run_name()
    run_backfill("--run", name, "--total-segments", "2", "--segment", "0")

    other_total, _ = run_failing("--run", name, "--total-segments", "3", "--segment", "1")
    other_processes, _ = run_failing("--run", name, "--total-segments", "2", "--segment", "1", "--processes", "2")
    other_mode, _ = run_failing("--run", name, "--total-segments", "2", "--segment", "1", "--replace-legacy-codes")

    assert {other_total.returncode, other_processes.returncode, other_mode.returncode} == {2}
    assert str(other_total).startswith(
        f"run {name!r} was started as 2 machine(s) x 1 process(es) = 2 scan segment(s), backfill; "
        "this worker was started as 3 machine(s) x 1 process(es) = 3 scan segment(s), backfill"
    )
    assert "this worker was started as 2 machine(s) x 2 process(es) = 4 scan segment(s)" in str(other_processes)
    assert "= 2 scan segment(s), replace-legacy-codes" in str(other_mode)


def test_the_service_refuses_a_run_of_another_split(dynamo_table: object) -> None:
    from invites.backfill import backfill_missing_codes

    name = run_name()
    backfill_missing_codes(dry_run=False, run_name=name, segment=0, total_segments=2)

    with pytest.raises(BackfillConfigError, match="this worker scans 3 segment"):
        backfill_missing_codes(dry_run=False, run_name=name, segment=0, total_segments=3)


# --- the legacy-codes flag --------------------------------------------------------------------


def test_a_run_with_failures_does_not_set_the_flag_and_status_says_why(legacy_table: object) -> None:
    put_legacy_space(space_id="good", name="Good", with_owner_membership=False)
    put_legacy_space(space_id="broken", name="Broken", with_owner_membership=False)
    name = run_name()
    denied = failing_when(lambda operation, body: operation == "TransactWriteItems" and b"SPACE#broken" in body)

    with client_hook("before-send.dynamodb", denied):
        error, _ = run_failing("--run", name, "--segments", "2")
    status = run_backfill("--run", name, "--status")

    assert error.returncode == 1
    assert engine.legacy_codes_recorded() is False
    total = "INFO - Total: 2 of 2 segments done; 2 spaces scanned, 1 updated, 0 skipped, 1 failed, "
    assert total + "0 existing codes recorded" in status
    assert any(
        line.startswith("INFO - Legacy codes: not all recorded: 1 segment(s) finished with failed") for line in status
    )

    run_backfill("--run", run_name())  # a new run retries the failed space, and completes the table

    assert engine.legacy_codes_recorded() is True


def test_a_crash_between_the_last_done_mark_and_the_flag_is_finished_by_status(
    legacy_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites.backfill import run as run_module

    put_legacy_space(name="Old", invite_code="abcd2345", with_owner_membership=False)
    name = run_name()
    with monkeypatch.context() as patched:
        patched.setattr(run_module, "run_finish", lambda **_: False)  # the worker dies right after its done mark
        run_backfill("--run", name, "--segments", "2")
    assert engine.legacy_codes_recorded() is False

    status = run_backfill("--run", name, "--status")

    assert engine.legacy_codes_recorded() is True
    assert (
        "INFO - Every existing invite code is now recorded (the run was complete; its last worker had not said so)"
        in status
    )
    assert "INFO - Legacy codes: all recorded (the table flag is set)" in run_backfill("--run", name, "--status")


def test_a_crash_before_the_flag_is_finished_by_a_rerun_of_the_run(
    legacy_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from invites.backfill import run as run_module

    put_legacy_space(name="Old", invite_code="abcd2345", with_owner_membership=False)
    name = run_name()
    with monkeypatch.context() as patched:
        patched.setattr(run_module, "run_finish", lambda **_: False)
        run_backfill("--run", name, "--segments", "2")

    rerun = run_backfill("--run", name, "--segments", "2")

    assert f"INFO - Run '{name}': 2 segment(s) already finished, 0 resumed" in rerun
    assert "INFO - Every existing invite code is now recorded" in rerun
    assert engine.legacy_codes_recorded() is True


# --- status ------------------------------------------------------------------------------------


def test_status_prints_each_segment_and_the_total(dynamo_table: object) -> None:
    seed_legacy_spaces(9)
    name = run_name()
    run_backfill("--run", name, "--total-segments", "3", "--segment", "1")

    lines = run_backfill("--run", name, "--status")

    assert lines[0].startswith(
        f"INFO - Run '{name}': 3 machine(s) x 1 process(es) = 3 scan segment(s), backfill; started "
    )
    assert lines[1] == "INFO - Segment 0: not started"
    assert lines[2].startswith("INFO - Segment 1: done, 1 page(s), ")
    assert lines[3] == "INFO - Segment 2: not started"
    assert lines[4].startswith("INFO - Total: 1 of 3 segments done; ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--status"], "--status shows a run's progress: give --run NAME"),
        (["--status", "--run", "never-started"], "no backfill run named 'never-started' in table"),
        (["--run", "bad name!"], "run name 'bad name!': use 1 to 64 letters"),
        (["--run", "x", "--checkpoint", "x.json"], "a run keeps its progress in DynamoDB; drop the checkpoint file"),
        (["--run", "x", "--dry-run"], "a dry run writes nothing, not even a run's progress; drop --run"),
        (["--processes", "2", "--checkpoint", "x.json"], "--checkpoint is for one process"),
        (["--processes", "2", "--segments", "2"], "with --processes each process scans one segment"),
    ],
)
def test_unusable_run_arguments_exit_with_status_two(dynamo_table: object, args: list[str], message: str) -> None:
    error, _ = run_failing(*args)

    assert error.returncode == 2
    assert message in str(error)


# --- segments from the scheduler -------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"])
def test_the_segment_comes_from_the_schedulers_index(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, settings, variable: str
) -> None:
    space_ids = seed_legacy_spaces(12)
    settings.BACKFILL_TOTAL_SEGMENTS = 2
    name = run_name()

    for index in range(2):
        monkeypatch.setenv(variable, str(index))
        run_backfill("--run", name)

    assert all(stored_code(space_id) for space_id in space_ids)
    status = run_status(name=name)
    assert status is not None and status.shape == RunShape("backfill", 2, 1, 2) and status.complete


def test_a_split_run_without_an_index_says_where_the_index_comes_from(dynamo_table: object, settings) -> None:
    settings.BACKFILL_TOTAL_SEGMENTS = 4

    error, _ = run_failing("--run", "x")

    assert error.returncode == 2
    assert str(error) == (
        "the backfill is split into 4 segments (BACKFILL_TOTAL_SEGMENTS) but this worker's segment is unknown: "
        "pass --segment I, or run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) "
        "or an AWS Batch array job (AWS_BATCH_JOB_ARRAY_INDEX)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JOB_COMPLETION_INDEX": "3"}, "segment 3 (JOB_COMPLETION_INDEX) needs the number of segments"),
        ({"AWS_BATCH_JOB_ARRAY_INDEX": "two"}, "AWS_BATCH_JOB_ARRAY_INDEX must be a whole number, got 'two'"),
    ],
)
def test_a_scheduler_index_that_cannot_be_used_is_one_line(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    error, _ = run_failing()

    assert error.returncode == 2
    assert message in str(error)


# --- every core: --processes -----------------------------------------------------------------------


@pytest.mark.slow
def test_processes_cover_the_table_and_report_every_space(legacy_table: object, tmp_path: Path) -> None:
    space_ids = legacy_table_with_work(40)
    report_path = tmp_path / "report.json"
    out = io.StringIO()

    call_command("backfill_invite_codes", "--processes", "2", "-v", "2", "--report", str(report_path), stdout=out)

    lines = out.getvalue().splitlines()
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert sum("✓ Added invite code" in line for line in lines) == 40  # the children's outcomes, relayed
    assert any(line.endswith("INFO - Found 42 total spaces") for line in lines)
    assert any(line.endswith("INFO - Recorded 2 existing invite codes") for line in lines)
    assert engine.legacy_codes_recorded() is True  # the processes together covered every segment
    assert '"updated": 40' in report_path.read_text()
