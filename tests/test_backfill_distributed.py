"""A rerun is the resume: real backfill processes killed with SIGKILL, then run again; a split run whose
segments come from the scheduler's index."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest

from spaces.dynamodb import botocore_client
from spaces.models import Space
from tests.invariants import invariant_violations, stored_code
from tests.seeding import seed_legacy_spaces
from tests.test_backfill_command import run_backfill
from tests.test_backfill_hardening import backfill_process

pytestmark = pytest.mark.django_db


def spaces_with_codes() -> int:
    """Spaces holding a code now (one strongly consistent count, however many pages)."""
    client, count, kwargs = botocore_client(), 0, dict[str, object]()
    while True:
        page = client.scan(
            TableName=Space.Meta.table_name,
            Select="COUNT",
            ConsistentRead=True,
            FilterExpression="SK = :sk AND attribute_exists(invite_code)",
            ExpressionAttributeValues={":sk": {"S": "METADATA"}},
            **kwargs,
        )
        count += page["Count"]
        if "LastEvaluatedKey" not in page:
            return count
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def kill_when(process: subprocess.Popen[str], coded_at_least: int, *, seconds: float = 60) -> None:
    """SIGKILL ``process`` once that many spaces hold a code (it must still be running then)."""
    deadline = time.monotonic() + seconds
    while spaces_with_codes() < coded_at_least and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, f"the backfill ended before it could be killed: {process.communicate()}"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


@pytest.mark.slow
def test_kill_9_at_random_points_then_a_plain_rerun_gives_every_space_one_code(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(300)
    rng = random.Random()
    for coded_before in sorted(rng.sample(range(1, 200), 2)):  # two chunks of 33 may land after it
        slow = backfill_process("--workers", "2", "--max-writes-per-second", "150")
        kill_when(slow, coded_before)
        # Right after the kill: every transaction was written whole or not at all.
        assert invariant_violations() == []
    assert 0 < spaces_with_codes() < 300

    rerun = backfill_process("-v", "0")
    stdout, stderr = rerun.communicate(timeout=120)

    assert rerun.returncode == 0, stderr
    assert "INFO - Found 300 total spaces" in stdout  # a rescan: reads only for the spaces done before
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []  # one code, one claim, one mapping each


@pytest.mark.slow
def test_a_split_run_with_a_killed_worker_is_finished_by_running_its_index_again(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(240)  # about 80 a segment: more than one chunk of 33
    split = {"BACKFILL_TOTAL_SEGMENTS": "3", "PYTHONUNBUFFERED": "1"}
    slow_args = ["--workers", "1", "--max-writes-per-second", "40", "-v", "2"]
    workers = {
        i: backfill_process(*(slow_args if i == 1 else []), JOB_COMPLETION_INDEX=str(i), **split) for i in range(3)
    }
    assert workers[1].stdout is not None
    for line in workers[1].stdout:  # its first chunk is written; the next waits for the rate cap
        if "✓ Added invite code" in line:
            break
    workers[1].send_signal(signal.SIGKILL)
    workers[1].communicate(timeout=10)
    results = [workers[i].communicate(timeout=60) for i in (0, 2)]
    assert [workers[i].returncode for i in (0, 2)] == [0, 0], results
    assert spaces_with_codes() < 240

    again = backfill_process(JOB_COMPLETION_INDEX="1", **split)  # what Kubernetes does for a failed index
    _, stderr = again.communicate(timeout=60)

    assert again.returncode == 0, stderr
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []


@pytest.mark.parametrize("variable", ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"])
def test_the_segment_comes_from_the_schedulers_index(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    space_ids = seed_legacy_spaces(12)
    monkeypatch.setenv("BACKFILL_TOTAL_SEGMENTS", "2")

    updated = 0
    for index in range(2):
        monkeypatch.setenv(variable, str(index))
        lines = run_backfill()
        updated += int(next(line for line in lines if "Successfully updated" in line).rsplit(" ", 1)[1])

    assert updated == 12
    assert all(stored_code(space_id) for space_id in space_ids)


def test_the_segment_option_wins_over_the_schedulers_index(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "not a number")  # never read: --segment is given

    lines = run_backfill("--segment", "1", "--total-segments", "2")

    assert "INFO - Total spaces processed: 0" in lines
