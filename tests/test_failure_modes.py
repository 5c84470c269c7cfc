"""The engine when DynamoDB's answer is lost: the write happened, botocore retries it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
import urllib3

from invites import services as engine
from spaces import dynamodb
from spaces.exceptions import AlreadyMember
from spaces.models import Membership, Space
from spaces.services import space_create
from tests.invariants import invariant_violations


@pytest.fixture
def first_answer_lost() -> Iterator[set[str]]:
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
        http.request(request.method, request.url, body=request.body, headers=dict(request.headers))
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=request.url)

    dynamodb.add_client_hook("before-send.dynamodb", before_send)
    yield operations
    dynamodb.remove_client_hook("before-send.dynamodb", before_send)


def test_a_regeneration_whose_switch_answer_was_lost_keeps_its_mapping(dynamo_table, first_answer_lost) -> None:
    space = space_create(owner_id="owner", name="Lost answer")
    first_answer_lost.add("UpdateItem")

    change = engine.invite_code_regenerate(space_id=space.id)

    stored = Space.get(*Space.key(space.id), consistent_read=True).invite_code
    assert stored == change.new_code
    assert invariant_violations() == []


def test_a_backfill_assignment_whose_switch_answer_was_lost_is_reported_as_applied(
    legacy_table, first_answer_lost
) -> None:
    from tests.legacy import put_legacy_space

    space = Space.get(*Space.key(put_legacy_space(name="Legacy, no code")))
    first_answer_lost.add("UpdateItem")

    [change] = engine.invite_code_assign_if_missing(spaces=[space])

    stored = Space.get(*Space.key(space.id), consistent_read=True).invite_code
    assert change.applied
    assert stored == change.new_code
    assert invariant_violations(require_codes=True) == []


def test_a_lost_answer_to_a_claim_only_costs_another_draw(dynamo_table, first_answer_lost) -> None:
    first_answer_lost.add("PutItem")

    space = space_create(owner_id="owner", name="Claim answer lost")

    assert invariant_violations() == []
    assert engine.invite_code_resolve(typed_code=space.invite_code)[0].id == space.id


def test_a_join_whose_answer_was_lost_is_a_join_not_already_a_member(dynamo_table, first_answer_lost) -> None:
    space = space_create(owner_id="owner", name="Join answer lost")
    first_answer_lost.add("PutItem")

    joined = engine.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")

    assert joined.id == space.id
    assert Membership.get(*Membership.key(space.id, "newcomer"), consistent_read=True).role == "member"
    with pytest.raises(AlreadyMember):
        engine.space_join_with_code(typed_code=space.invite_code, user_id="newcomer")


def test_a_join_racing_another_join_of_the_same_user_is_already_a_member(dynamo_table, monkeypatch) -> None:
    space = space_create(owner_id="owner", name="Double click")
    real_resolve = engine.invite_code_resolve

    def resolve_then_other_request_joins(**kwargs: Any) -> Any:
        found = real_resolve(**kwargs)
        Membership.build(space.id, "clicker", "member", "2026-01-01T00:00:00+00:00").save()
        return found

    monkeypatch.setattr(engine, "invite_code_resolve", resolve_then_other_request_joins)

    with pytest.raises(AlreadyMember):
        engine.space_join_with_code(typed_code=space.invite_code, user_id="clicker")
