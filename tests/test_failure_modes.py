"""The engine when DynamoDB's answer is lost or a transaction is cancelled for a conflict.

A lost answer: the request reached DynamoDB and was applied, the connection
broke before the answer came back, botocore retried the same request (same
``ClientRequestToken``). The embedded DynamoDB, like the real one, applies a
repeated token once and answers success.

A conflict: real DynamoDB cancels a transaction that meets another one on the
same item (``TransactionConflict``); botocore does not retry it, the engine does.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest
import urllib3

from invites import assignment, joining
from invites import services as engine
from invites.services import space_create
from spaces.exceptions import AlreadyMember
from spaces.models import Membership, Space
from spaces.services import space_membership_add
from tests.faults import answer
from tests.invariants import invariant_violations, scan_all
from tests.legacy import put_legacy_space


@pytest.fixture
def first_answer_lost(client_events: Any) -> set[str]:
    """For each operation put in the returned set, once: the request reaches DynamoDB, its answer is lost.

    That is what a connection reset after the server applied a write looks
    like to botocore, which then retries the same request.
    """
    operations: set[str] = set()
    http = urllib3.PoolManager()

    def before_send(request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        if operation not in operations:
            return
        operations.discard(operation)
        applied = http.request(request.method, request.url, body=request.body, headers=dict(request.headers))
        assert applied.status == 200, applied.data
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=request.url)

    client_events.register("before-send.dynamodb", before_send)
    return operations


def test_a_regeneration_whose_answer_was_lost_is_applied_once_and_reported_as_applied(
    dynamo_table, first_answer_lost
) -> None:
    space = space_create(owner_id="owner", name="Lost answer")
    first_answer_lost.add("TransactWriteItems")

    change = engine.invite_code_regenerate(space_id=space.id)

    assert not first_answer_lost, "the answer was never lost"
    assert change.applied
    assert Space.get(*Space.key(space.id), consistent_read=True).invite_code == change.new_code
    assert invariant_violations(require_codes=True) == []


def test_a_backfill_assignment_whose_answer_was_lost_is_reported_as_applied(legacy_table, first_answer_lost) -> None:
    space = Space.get(*Space.key(put_legacy_space(name="Legacy, no code")))
    first_answer_lost.add("TransactWriteItems")

    [change] = assignment.invite_code_assign_if_missing(spaces=[space])

    assert not first_answer_lost
    assert change.applied
    assert Space.get(*Space.key(space.id), consistent_read=True).invite_code == change.new_code
    assert invariant_violations(require_codes=True) == []


def test_a_create_whose_answer_was_lost_creates_one_space(dynamo_table, first_answer_lost) -> None:
    first_answer_lost.add("TransactWriteItems")

    space = space_create(owner_id="owner", name="Create answer lost")

    assert not first_answer_lost
    assert [item["id"] for item in scan_all() if item["SK"] == "METADATA"] == [space.id]
    assert joining.invite_code_resolve(typed_code=space.invite_code)[0].id == space.id
    assert invariant_violations(require_codes=True) == []


def test_a_join_whose_answer_was_lost_is_a_join_counted_once(dynamo_table, first_answer_lost) -> None:
    space = space_create(owner_id="owner", name="Join answer lost")
    first_answer_lost.add("TransactWriteItems")

    joined = joining.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")

    assert not first_answer_lost
    assert joined.id == space.id
    assert Membership.get(*Membership.key(space.id, "newcomer"), consistent_read=True).role == "member"
    assert Space.get(*Space.key(space.id), consistent_read=True).member_count == 2
    with pytest.raises(AlreadyMember):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")


def test_a_join_racing_another_join_of_the_same_user_is_already_a_member(dynamo_table, monkeypatch) -> None:
    space = space_create(owner_id="owner", name="Double click")
    real_lookup = joining._space_holding

    def look_up_then_other_request_joins(code: str) -> Space:
        found = real_lookup(code)
        space_membership_add(space_id=space.id, user_id="clicker", role="member")
        return found

    monkeypatch.setattr(joining, "_space_holding", look_up_then_other_request_joins)

    with pytest.raises(AlreadyMember):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="clicker")
    assert Space.get(*Space.key(space.id), consistent_read=True).member_count == 2


class ConflictInjector:
    """Cancels the first ``times`` TransactWriteItems with TransactionConflict on every action, as DynamoDB does
    when another transaction holds one of its items."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.injected = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        if not (target.decode() if isinstance(target, bytes) else target).endswith("TransactWriteItems"):
            return None
        if self.left == 0:
            return None
        self.left -= 1
        self.injected += 1
        actions = json.loads(request.body)["TransactItems"]
        reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}] + [
            {"Code": "None"} for _ in actions[1:]
        ]
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
                "[TransactionConflict]",
                "CancellationReasons": reasons,
            }
        ).encode()
        return answer(request, 400, body)


@pytest.fixture
def conflicts(client_events: Any) -> Any:
    def inject(times: int) -> ConflictInjector:
        injector = ConflictInjector(times)
        client_events.register("before-send.dynamodb", injector)
        return injector

    return inject


@pytest.mark.parametrize(
    "operation",
    ["create", "regenerate", "join", "assign"],
)
def test_a_transaction_cancelled_for_a_conflict_is_tried_again(dynamo_table, conflicts, operation: str) -> None:
    space = space_create(owner_id="owner", name="Contended")
    bare = Space.get(*Space.key(put_legacy_space(name="Bare")))
    injector = conflicts(2)

    if operation == "create":
        space_create(owner_id="other", name="Second")
    elif operation == "regenerate":
        assert engine.invite_code_regenerate(space_id=space.id).applied
    elif operation == "join":
        joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")
        assert Space.get(*Space.key(space.id), consistent_read=True).member_count == 2
    else:
        [change] = assignment.invite_code_assign_if_missing(spaces=[bare])
        assert change.applied

    assert injector.injected == 2
    assert invariant_violations() == []


def test_conflicts_that_never_end_give_up_after_a_bounded_number_of_tries(dynamo_table, conflicts) -> None:
    from spaces.exceptions import DynamoBusy
    from spaces.transactions import TRANSIENT_RETRIES

    space = space_create(owner_id="owner", name="Hot item")
    injector = conflicts(1000)

    with pytest.raises(DynamoBusy):
        engine.invite_code_regenerate(space_id=space.id)

    assert injector.injected == TRANSIENT_RETRIES + 1
    assert Space.get(*Space.key(space.id), consistent_read=True).invite_code == space.invite_code


def test_an_answer_that_is_not_dynamodbs_is_unavailable_not_a_server_error(dynamo_table, client_events) -> None:
    """A request cut off mid-body reaches the server truncated; its answer is an HTTP 400 without DynamoDB's JSON."""
    from spaces.exceptions import DynamoUnavailable

    space = space_create(owner_id="owner", name="Cut request")

    def truncated(request: Any, **_: Any) -> Any:
        if b"TransactWriteItems" in (request.headers.get("X-Amz-Target") or b""):
            return answer(request, 400, b"<html>Bad Request</html>", content_type="text/html")
        return None

    client_events.register("before-send.dynamodb", truncated)

    with pytest.raises(DynamoUnavailable):
        engine.invite_code_regenerate(space_id=space.id)
    assert Space.get(*Space.key(space.id), consistent_read=True).invite_code == space.invite_code
