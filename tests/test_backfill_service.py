"""The backfill service shared by the command and the admin: its interface, races, the write limiter."""

from __future__ import annotations

import threading
import time

import pytest

from invites import services as engine
from invites.audit import audit_invite_codes
from invites.backfill import RateLimiter, backfill_missing_codes
from invites.services import SpaceOutcome, Status, space_create
from tests.invariants import invariant_violations, stored_code
from tests.legacy import put_legacy_space
from tests.seeding import seed_legacy_spaces

pytestmark = pytest.mark.django_db


# --- the interface the admin uses ---------------------------------------------------------------


def test_limit_handles_that_many_spaces_and_reports_the_run_as_incomplete(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(8)
    heard: list[SpaceOutcome] = []

    summary = backfill_missing_codes(limit=5, on_outcome=heard.append, keep_outcomes=True, actor_id="admin-1")

    assert (summary.updated, summary.missing, summary.complete) == (5, 5, False)
    assert len(summary.outcomes) == 5
    for outcome in summary.outcomes:
        assert outcome.status is Status.UPDATED
        assert stored_code(outcome.space_id) == outcome.new_code
        assert outcome.name.startswith("Legacy ")
    assert sorted(o.space_id for o in heard) == sorted(o.space_id for o in summary.outcomes)
    assert sum(1 for space_id in space_ids if stored_code(space_id)) == 5


def test_a_run_without_limit_reports_complete(dynamo_table: object) -> None:
    seed_legacy_spaces(3)
    space_create(owner_id="o", name="Coded")

    summary = backfill_missing_codes()

    assert (summary.scanned, summary.missing, summary.updated, summary.failed) == (4, 3, 3, 0)
    assert summary.complete is True
    assert summary.seconds > 0
    assert summary.outcomes == []  # kept only when asked: a run over millions keeps nothing


def test_a_dry_run_lists_would_be_changes_without_codes(dynamo_table: object) -> None:
    (space_id,) = seed_legacy_spaces(1)

    summary = backfill_missing_codes(dry_run=True, keep_outcomes=True)

    assert summary.outcomes == [SpaceOutcome(space_id, Status.WOULD_UPDATE, name="Legacy 0")]
    assert summary.updated == 1
    assert stored_code(space_id) is None


def test_a_passed_deadline_starts_no_new_work_and_reports_incomplete(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(4)

    summary = backfill_missing_codes(deadline=time.monotonic() - 1)

    assert summary.complete is False
    assert summary.updated == 0
    assert not any(stored_code(space_id) for space_id in space_ids)


def test_space_ids_reads_only_those_and_an_unknown_one_fails_alone(dynamo_table: object) -> None:
    chosen, other = put_legacy_space(name="Chosen"), put_legacy_space(name="Other")

    summary = backfill_missing_codes(space_ids=[chosen, chosen, "nosuchspace"])

    assert (summary.updated, summary.failed) == (1, 1)
    assert summary.failures[0].error == "Space nosuchspace not found"
    assert stored_code(chosen) and stored_code(other) is None


def test_the_backfill_never_sets_the_legacy_codes_flag(legacy_table: object) -> None:
    put_legacy_space(name="Old", invite_code="abcd2345")
    put_legacy_space(name="No code")

    backfill_missing_codes()

    assert engine.legacy_codes_recorded() is False  # audit_invite_codes --repair sets it


# --- races ------------------------------------------------------------------------------


def test_two_backfills_at_once_give_each_space_exactly_one_code(dynamo_table: object) -> None:
    space_ids = seed_legacy_spaces(80)
    barrier = threading.Barrier(2)
    summaries = []

    def one_backfill() -> None:
        barrier.wait()
        summaries.append(backfill_missing_codes(workers=3))

    threads = [threading.Thread(target=one_backfill) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(summary.updated for summary in summaries) == 80
    assert all(summary.failed == 0 for summary in summaries)
    assert all(stored_code(space_id) for space_id in space_ids)
    assert invariant_violations(require_codes=True) == []
    assert audit_invite_codes(repair=False, grace_seconds=0).problems == []


# --- the write limiter ---------------------------------------------------------------------------


def fake_clock() -> tuple[dict[str, float], RateLimiter]:
    clock = {"now": 100.0, "slept": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds
        clock["slept"] += seconds

    return clock, RateLimiter(5, clock=lambda: clock["now"], sleep=sleep)


def test_the_rate_limiter_spaces_writes_at_the_requested_rate() -> None:
    clock, limiter = fake_clock()

    for _ in range(11):
        limiter.acquire()

    assert clock["slept"] == pytest.approx(2.0)


def test_a_write_larger_than_the_bucket_waits_for_its_whole_cost() -> None:
    clock, limiter = fake_clock()

    limiter.acquire(99)  # a transaction of 99 actions under a cap of 5 a second
    limiter.acquire(1)

    # One token was there at the start: 99 items go after 19.6 s, the next one 0.2 s later.
    assert clock["slept"] == pytest.approx(19.8)


def test_an_error_without_a_response_has_no_error_code_and_does_not_crash() -> None:
    from botocore.exceptions import ReadTimeoutError
    from pynamodb.exceptions import ScanError

    from spaces.dynamodb import error_code

    timeout = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
    timeout.response = None

    assert error_code(ScanError("Failed to scan table", timeout)) is None
