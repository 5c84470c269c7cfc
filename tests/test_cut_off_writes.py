"""Writes cut off by an outage: once DynamoDB answers again, nothing is left behind.

The engine hands the mappings of a write whose outcome it does not know to
the janitor (invites/janitor.py), which keeps the code the space holds and
removes the others, retrying while DynamoDB is away. Afterwards the audit,
with no grace period, finds nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
import urllib3

from benchmarks.load_test import start_forwarder
from invites import services as engine
from invites.audit import audit_invite_codes
from invites.janitor import janitor
from devtools.embedded_dynamodb import free_port
from spaces import dynamodb
from spaces.exceptions import DynamoUnavailable
from spaces.models import Space
from spaces.services import space_create
from tests.invariants import invariant_violations, mapped_codes, scan_all, stored_code
from tests.legacy import put_legacy_space


class Outage:
    """From a chosen call on, every request of the shared client fails to connect, until ``end()``.

    With ``answer_lost`` the chosen call reaches DynamoDB first: the write
    happens, its answer never comes back.
    """

    def __init__(self) -> None:
        self.down = False
        self.begin_at: tuple[str, int] | None = None
        self.answer_lost = False
        self.refused = 0
        self.http = urllib3.PoolManager()

    def begins_at(self, operation: str, *, skip: int = 0, answer_lost: bool = False) -> None:
        self.begin_at, self.answer_lost = (operation, skip), answer_lost

    def end(self) -> None:
        self.down = False

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        if not self.down and self.begin_at is not None and self.begin_at[0] == operation:
            name, skip = self.begin_at
            if skip:
                self.begin_at = (name, skip - 1)
                return
            self.down, self.begin_at = True, None
            if self.answer_lost:
                self.http.request(request.method, request.url, body=request.body, headers=dict(request.headers))
        if self.down:
            self.refused += 1
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture
def outage(dynamo_table: dynamodb.TableBinding) -> Iterator[Outage]:
    # One attempt per call: the outage is the test's, not botocore's retries'.
    dynamodb.bind_table(dataclasses.replace(dynamo_table, max_attempts=1))
    cut = Outage()
    dynamodb.add_client_hook("before-send.dynamodb", cut)
    yield cut
    cut.end()
    dynamodb.remove_client_hook("before-send.dynamodb", cut)
    assert janitor.flush(timeout=10.0)
    dynamodb.bind_table(dynamo_table)


def recover(outage: Outage) -> None:
    """Let the janitor try while DynamoDB is away, then bring it back and wait for the janitor."""
    time.sleep(0.4)
    assert janitor.pending() > 0, "the janitor gave up or never had work"
    refused_while_down = outage.refused
    outage.end()
    assert janitor.flush(timeout=10.0)
    assert refused_while_down >= 2, "the janitor did not retry while DynamoDB was away"


def assert_nothing_left_behind() -> None:
    assert invariant_violations() == []
    report = audit_invite_codes(repair=False, grace_seconds=0)
    assert report.clean, report.counts()


# Where the outage begins: (operation, how many of them pass first, whether that one lands).
# The first PutItem is the claim, the second the new mapping, the UpdateItem the switch.
CUT_OFF_POINTS = {
    "before-the-new-mapping": ("PutItem", 1, False),
    "after-the-new-mapping": ("PutItem", 1, True),
    "before-the-switch": ("UpdateItem", 0, False),
    "after-the-switch": ("UpdateItem", 0, True),
}


@pytest.mark.parametrize("cut_off_at", list(CUT_OFF_POINTS))
def test_a_regeneration_cut_off_anywhere_ends_with_one_code_and_its_mapping(outage: Outage, cut_off_at: str) -> None:
    space = space_create(owner_id="o", name=f"Cut off {cut_off_at}")
    operation, skip, answer_lost = CUT_OFF_POINTS[cut_off_at]
    outage.begins_at(operation, skip=skip, answer_lost=answer_lost)

    with pytest.raises(DynamoUnavailable):
        engine.invite_code_regenerate(space_id=space.id)
    recover(outage)

    code = stored_code(space.id)
    # Only a switch that landed changes the code; the old one survives any earlier cut.
    assert (code != space.invite_code) is (cut_off_at == "after-the-switch")
    assert mapped_codes(space.id) == {code}
    assert_nothing_left_behind()


@pytest.mark.parametrize("answer_lost", [False, True], ids=["switch-not-made", "switch-made"])
def test_a_backfill_assignment_cut_off_at_its_switch_ends_consistent(outage: Outage, answer_lost: bool) -> None:
    space = Space.get(*Space.key(put_legacy_space(name="No code yet")), consistent_read=True)
    outage.begins_at("UpdateItem", answer_lost=answer_lost)

    with pytest.raises(DynamoUnavailable):
        engine.invite_code_assign_if_missing(spaces=[space])
    recover(outage)

    code = stored_code(space.id)
    assert (code is not None) is answer_lost
    assert mapped_codes(space.id) == ({code} if code else set())
    assert invariant_violations() == []
    report = audit_invite_codes(repair=False, grace_seconds=0)
    # The only thing the audit may see is the space still waiting for its code.
    assert report.spaces_without_code == ([] if answer_lost else [space.id])
    assert report.problem_count == len(report.spaces_without_code)


def test_a_space_creation_cut_off_before_the_space_is_written_leaves_no_mapping(outage: Outage) -> None:
    # The claim is the first PutItem, the space the second.
    outage.begins_at("PutItem", skip=1)

    with pytest.raises(DynamoUnavailable):
        space_create(owner_id="o", name="Never written")
    recover(outage)

    assert not [item for item in scan_all() if item["PK"].startswith("INVITE#")]
    assert_nothing_left_behind()


def test_a_removal_that_never_gets_through_is_abandoned_for_the_audit(
    outage: Outage, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.INVITE_MAPPING_CLEANUP_GIVE_UP_SECONDS = 0.3
    space = space_create(owner_id="o", name="Long outage")
    outage.begins_at("UpdateItem", answer_lost=True)

    with caplog.at_level(logging.ERROR, logger="invites"):
        with pytest.raises(DynamoUnavailable):
            engine.invite_code_regenerate(space_id=space.id)
        assert janitor.flush(timeout=10.0)  # drained by giving up, DynamoDB still away
    outage.end()

    assert any("audit_invite_codes --repair removes them" in r.getMessage() for r in caplog.records)
    report = audit_invite_codes(repair=True, grace_seconds=0)
    assert report.stale_mappings == [(space.invite_code, space.id, stored_code(space.id))]
    assert report.repaired == {"stale_mappings": 1}
    assert_nothing_left_behind()


def _switch_behind_the_engines_back(space_id: str, old_code: str, new_code: str) -> None:
    pk, sk = Space.key(space_id)
    dynamodb.botocore_client().update_item(
        TableName=dynamodb.current_binding().table_name,
        Key={"PK": {"S": pk}, "SK": {"S": sk}},
        UpdateExpression="SET invite_code = :new",
        ConditionExpression="invite_code = :old",
        ExpressionAttributeValues={":new": {"S": new_code}, ":old": {"S": old_code}},
    )


def test_a_switch_dynamodb_applies_after_the_client_gave_up_keeps_its_mapping(outage: Outage, settings: Any) -> None:
    """Real DynamoDB may apply a request whose answer the client stopped waiting for.

    The janitor reads the space only after the settle time, so the mapping
    of the code that late switch sets is still there when it lands.
    """
    settings.INVITE_MAPPING_CLEANUP_SETTLE_SECONDS = 1.5
    space = space_create(owner_id="o", name="Late switch")
    old_code = space.invite_code
    assert old_code is not None
    outage.begins_at("UpdateItem")
    with pytest.raises(DynamoUnavailable):
        engine.invite_code_regenerate(space_id=space.id)
    outage.end()
    (new_code,) = mapped_codes(space.id) - {old_code}
    time.sleep(0.5)
    assert janitor.pending() == 1, "the janitor did not wait for the settle time"

    _switch_behind_the_engines_back(space.id, old_code, new_code)  # the late write lands
    assert janitor.flush(timeout=10.0)

    assert stored_code(space.id) == new_code
    assert mapped_codes(space.id) == {new_code}
    assert_nothing_left_behind()


def test_the_settle_time_does_not_hold_back_the_old_mapping_of_a_finished_regeneration(
    dynamo_table: dynamodb.TableBinding, settings: Any
) -> None:
    settings.INVITE_MAPPING_CLEANUP_SETTLE_SECONDS = 60.0
    space = space_create(owner_id="o", name="Settled")

    change = engine.invite_code_regenerate(space_id=space.id)

    assert janitor.flush(timeout=5.0)
    assert mapped_codes(space.id) == {change.new_code}


def test_regenerations_through_a_real_outage_leave_a_consistent_table(
    dynamo_table: dynamodb.TableBinding, moto_server: Any
) -> None:
    """Threads regenerate through a TCP forwarder that is killed and restarted, as in the failure benchmark."""
    port = free_port()
    forwarder = start_forwarder(port, moto_server.port)
    through_forwarder = dataclasses.replace(
        dynamo_table, host=f"http://127.0.0.1:{port}", max_attempts=1, connect_timeout=0.5, read_timeout=2.0
    )
    dynamodb.bind_table(through_forwarder)
    try:
        space_ids = [space_create(owner_id="o", name=f"Busy {n}").id for n in range(4)]
        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        def regenerate_until_stopped(seed: int) -> None:
            chooser = random.Random(seed)
            while not stop.is_set():
                try:
                    engine.invite_code_regenerate(space_id=chooser.choice(space_ids))
                    outcomes["changed"] += 1
                except DynamoUnavailable:
                    outcomes["unavailable"] += 1
                    time.sleep(0.02)

        workers = [threading.Thread(target=regenerate_until_stopped, args=(n,)) for n in range(6)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        forwarder.kill()
        forwarder.wait()
        time.sleep(1.0)
        forwarder = start_forwarder(port, moto_server.port)
        time.sleep(1.0)
        stop.set()
        for worker in workers:
            worker.join(30)

        assert outcomes["unavailable"] > 0 and outcomes["changed"] > 0, outcomes
        assert janitor.flush(timeout=15.0), f"{janitor.pending()} removals left"
        assert_nothing_left_behind()
    finally:
        forwarder.kill()
        forwarder.wait()
        dynamodb.bind_table(dynamo_table)


def test_two_removals_of_one_mapping_in_one_batch_both_get_done(dynamo_table: dynamodb.TableBinding) -> None:
    space = space_create(owner_id="o", name="Named twice")
    with janitor.paused():
        # A failed write and a lost race can name the same dead mapping;
        # BatchWriteItem refuses duplicate keys in one request.
        janitor.remove_dead(space.id, ["DEAD2345"])
        janitor.remove_unless_held(space.id, ["DEAD2345", space.invite_code])
        from tests.legacy import put_legacy_mapping

        put_legacy_mapping(code="DEAD2345", space_id=space.id)
    assert janitor.flush(timeout=10.0)

    assert mapped_codes(space.id) == {space.invite_code}


def test_more_removals_than_one_batch_are_all_done(dynamo_table: dynamodb.TableBinding) -> None:
    from tests.legacy import put_legacy_mapping

    space = space_create(owner_id="o", name="Many dead codes")
    dead = [f"DEAD{n:04d}" for n in range(60)]
    with janitor.paused():
        for code in dead:
            put_legacy_mapping(code=code, space_id=space.id)
            janitor.remove_unless_held(space.id, [code, space.invite_code])
        assert janitor.pending() == 60
    assert janitor.flush(timeout=10.0)

    assert mapped_codes(space.id) == {space.invite_code}
