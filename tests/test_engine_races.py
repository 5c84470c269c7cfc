"""Races made deterministic: another writer commits between an operation's read and its transaction.

A botocore ``before-call`` hook on the operation's ``TransactWriteItems``
runs the other writer to completion first, so each test fails if the
condition that guards against that writer is removed (``make mutants``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from invites import assignment, joining
from invites import services as engine
from invites.audit import audit_invite_codes
from invites.policies import InvitePolicy, expiry_in
from spaces import keys, members
from spaces.exceptions import Blocked, InvalidInviteCode, MemberConflict, NotAMember, SpaceNotFound
from spaces.models import Membership, Space
from spaces.selectors import space_with_memberships
from spaces.services import space_membership_add, space_membership_remove
from spaces.transactions import TransactionCancelled
from tests.api_support import as_user
from tests.invariants import scan_all
from tests.legacy import put_legacy_membership, put_legacy_space

pytestmark = pytest.mark.django_db


def before_next_transaction(client_events: Any, other_writer: Callable[[], Any]) -> list[Any]:
    """Run ``other_writer`` once, just before the next transaction is sent; returns what it returned."""
    ran: list[Any] = []

    def interleave(**_: Any) -> None:
        if not ran:
            ran.append(None)  # first, so the other writer's own transaction does not re-enter
            ran[0] = other_writer()

    client_events.register("before-call.dynamodb.TransactWriteItems", interleave)
    return ran


def test_a_join_that_loses_to_a_regeneration_is_refused(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Raced")
    ran = before_next_transaction(client_events, lambda: engine.invite_code_regenerate(space_id=space.id))

    with pytest.raises(InvalidInviteCode):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="late")

    assert ran and ran[0].applied  # the regeneration did commit between the join's read and its write
    members = [
        item for item in scan_all() if item["PK"] == keys.space_pk(space.id) and item["SK"].startswith("MEMBER#")
    ]
    assert [item["user_id"] for item in members] == ["owner"]
    assert Space.get(*Space.key(space.id)).member_count == 1


def test_two_first_joins_of_an_uncounted_space_are_both_counted(dynamo_table: Any, client_events: Any) -> None:
    space_id = put_legacy_space(invite_code="RACE2345")  # the earlier system's space: no member_count yet
    ran = before_next_transaction(
        client_events, lambda: joining.space_join_with_code(typed_code="RACE2345", user_id="first")
    )

    joining.space_join_with_code(typed_code="RACE2345", user_id="second")

    assert ran  # the other join committed between this join's count and its write
    members = [
        item for item in scan_all() if item["PK"] == keys.space_pk(space_id) and item["SK"].startswith("MEMBER#")
    ]
    assert len(members) == 3  # the owner, first, second
    assert Space.get(*Space.key(space_id)).member_count == 3


def metadata_exists(space_id: str) -> bool:
    return any(item["PK"] == keys.space_pk(space_id) and item["SK"] == "METADATA" for item in scan_all())


def test_a_space_id_already_taken_is_never_overwritten(dynamo_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = engine.space_create(owner_id="first", name="First")
    monkeypatch.setattr(engine, "new_space_id", lambda: taken.id)

    with pytest.raises(TransactionCancelled):
        engine.space_create(owner_id="second", name="Second")

    assert Space.get(*Space.key(taken.id)).name == "First"


def test_adding_a_member_to_a_space_deleted_meanwhile_writes_nothing(dynamo_table: Any, client_events: Any) -> None:
    space_id = put_legacy_space()  # uncounted: the count's own condition would let a missing space through
    before_next_transaction(client_events, lambda: Space(*Space.key(space_id)).delete())

    with pytest.raises(SpaceNotFound):
        space_membership_add(space_id=space_id, user_id="late", role="member")

    assert not metadata_exists(space_id)


def test_removing_from_a_space_deleted_meanwhile_leaves_no_count_behind(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Doomed")
    joining.space_join_with_code(typed_code=space.invite_code, user_id="leaver")
    before_next_transaction(client_events, lambda: Space(*Space.key(space.id)).delete())

    assert space_membership_remove(space_id=space.id, user_id="leaver") is True

    assert not metadata_exists(space.id)


def test_removing_from_an_uncounted_space_that_gets_a_count_meanwhile_keeps_it_exact(
    dynamo_table: Any, client_events: Any
) -> None:
    space_id = put_legacy_space(invite_code="COUNT234")
    put_legacy_membership(space_id=space_id, user_id="leaver", role="member")
    before_next_transaction(
        client_events, lambda: joining.space_join_with_code(typed_code="COUNT234", user_id="joiner")
    )

    assert space_membership_remove(space_id=space_id, user_id="leaver") is True

    members = [
        item for item in scan_all() if item["PK"] == keys.space_pk(space_id) and item["SK"].startswith("MEMBER#")
    ]
    assert sorted(item["user_id"] for item in members) == ["joiner", "legacy-owner"]
    assert Space.get(*Space.key(space_id)).member_count == 2


def test_removing_someone_who_is_not_a_member_changes_nothing(dynamo_table: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Kept")

    assert space_membership_remove(space_id=space.id, user_id="stranger") is False

    assert Space.get(*Space.key(space.id)).member_count == 1


@pytest.mark.parametrize(
    ("ours", "rivals", "fields"),
    [
        ({}, {"max_uses": 1, "expires_in": 600}, {"invite_code", "invite_url", "expires_at", "max_uses", "role"}),
        ({"max_uses": 1, "expires_in": 600}, {}, {"invite_code", "invite_url"}),
    ],
    ids=["plain-loses-to-policy", "policy-loses-to-plain"],
)
def test_a_regeneration_that_loses_the_race_answers_with_what_is_stored(
    api_client: Any,
    space_people: Any,
    client_events: Any,
    ours: dict[str, int],
    rivals: dict[str, int],
    fields: set[str],
) -> None:
    space_id = space_people.space.id
    rival = InvitePolicy(expires_at=expiry_in(rivals.get("expires_in")), max_uses=rivals.get("max_uses"))
    ran = before_next_transaction(
        client_events, lambda: engine.invite_code_regenerate(space_id=space_id, policy=rival, source="rival")
    )

    response = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_id}/invite", ours, format="json")

    assert response.status_code == 200
    stored = Space.get(*Space.key(space_id), consistent_read=True)
    assert ran and response.json()["invite_code"] == stored.invite_code == ran[0].new_code
    assert set(response.json()) == fields
    assert response.json().get("max_uses") == stored.invite_max_uses


def mapped_spaces(code: str) -> set[str]:
    return {item["space_id"] for item in scan_all() if item["PK"] == keys.invite_pk(code)}


def test_the_audit_maps_no_code_the_space_gave_up_meanwhile(dynamo_table: Any, client_events: Any) -> None:
    space_id = put_legacy_space(invite_code="GONE2345", with_mapping=False)
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(space_id))])  # only the mapping is missing
    before_next_transaction(client_events, lambda: engine.invite_code_regenerate(space_id=space_id))

    audit_invite_codes(repair=True, grace_seconds=0)

    assert mapped_spaces("GONE2345") == set()


def test_the_audit_maps_no_code_another_space_claimed(dynamo_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = put_legacy_space(invite_code="TWIN2345")
    other = put_legacy_space(invite_code="TWIN2345", with_mapping=False)
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(keeper))])

    def cannot_regenerate(**_: object) -> None:
        raise RuntimeError("DynamoDB refused the regeneration")

    monkeypatch.setattr(engine, "invite_code_regenerate", cannot_regenerate)  # `other` keeps holding the code

    report = audit_invite_codes(repair=True, grace_seconds=0)

    assert [finding.space_id for finding, _ in report.repair_failures] == [other]
    assert mapped_spaces("TWIN2345") == {keeper}


def test_a_policy_change_that_loses_to_a_regeneration_applies_to_the_new_code_as_it_is(
    dynamo_table: Any, client_events: Any
) -> None:
    space = engine.space_create(owner_id="owner", name="Paused")
    engine.invite_code_policy_update(space_id=space.id, paused=True)
    ran = before_next_transaction(client_events, lambda: engine.invite_code_regenerate(space_id=space.id))

    changed = engine.invite_code_policy_update(space_id=space.id, max_uses=5)

    stored = Space.get(*Space.key(space.id), consistent_read=True)
    assert ran and stored.invite_code == ran[0].new_code == changed.invite_code
    assert (stored.invite_max_uses, stored.invite_paused) == (5, None)  # the old code's pause did not come back


def test_recording_a_code_the_space_gave_up_meanwhile_leaves_it_to_its_other_holder(
    dynamo_table: Any, client_events: Any
) -> None:
    first = put_legacy_space(invite_code="DUAL2345")
    second = put_legacy_space(invite_code="DUAL2345")  # the earlier system's duplicate
    before_next_transaction(client_events, lambda: engine.invite_code_regenerate(space_id=first))

    assert assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(first))]) == {first: None}
    # The code is the second holder's alone now: it is claimed for it, not reported as another's.
    assert assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(second))]) == {second: None}


def test_a_join_is_refused_when_the_code_expires_between_its_read_and_its_write(
    dynamo_table: Any, client_events: Any
) -> None:
    space = engine.space_create(owner_id="owner", name="Expiring")
    # Expired at epoch second 1, not "now": a join that read the clock a second earlier must still be refused.
    expire = lambda: Space(*Space.key(space.id)).update(actions=[Space.invite_expires_at.set(1)])  # noqa: E731
    before_next_transaction(client_events, expire)

    with pytest.raises(InvalidInviteCode):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="late")

    assert Space.get(*Space.key(space.id), consistent_read=True).member_count == 1


# --- after the invite: blocks, removals and role changes ---------------------------------------------


def _people(space_id: str, *user_ids: str) -> tuple[Space, dict[str, Any]]:
    return space_with_memberships(space_id=space_id, user_ids=list(user_ids))


def test_a_join_that_loses_to_a_block_is_refused(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Guarded")
    read, found = _people(space.id, "owner", "late")
    block = lambda: members.space_member_remove(  # noqa: E731
        space=read, user_id="late", target=None, actor=members.Actor("owner", found["owner"]), block=True
    )
    before_next_transaction(client_events, block)

    with pytest.raises(Blocked):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="late")

    assert _member_roles(space.id) == {"owner": "owner"} and Space.get(*Space.key(space.id)).member_count == 1


def test_a_block_that_loses_to_a_join_removes_the_newcomer_too(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Guarded")
    read, found = _people(space.id, "owner", "early")
    before_next_transaction(
        client_events, lambda: joining.space_join_with_code(typed_code=space.invite_code, user_id="early")
    )

    members.space_member_remove(
        space=read, user_id="early", target=None, actor=members.Actor("owner", found["owner"]), block=True
    )

    assert _member_roles(space.id) == {"owner": "owner"} and Space.get(*Space.key(space.id)).member_count == 1
    assert any(item["SK"] == keys.block_sk("early") for item in scan_all())


def test_a_removal_that_loses_to_a_role_change_is_a_conflict(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Roles")
    space_membership_add(space_id=space.id, user_id="m", role="member")
    read, found = _people(space.id, "owner", "m", "admin")
    space_membership_add(space_id=space.id, user_id="admin", role="admin")
    owner = members.Actor("owner", found["owner"])
    before_next_transaction(
        client_events,
        lambda: members.space_member_role_set(space=read, user_id="m", target=found["m"], role="admin", actor=owner),
    )
    admin = members.Actor("admin", Membership.get(*Membership.key(space.id, "admin")))

    with pytest.raises(MemberConflict):  # an admin may not remove an admin: the removal must not half-apply
        members.space_member_remove(space=read, user_id="m", target=found["m"], actor=admin)

    assert _member_roles(space.id)["m"] == "admin" and Space.get(*Space.key(space.id)).member_count == 3


def test_a_role_change_that_loses_to_a_removal_is_not_found(dynamo_table: Any, client_events: Any) -> None:
    space = engine.space_create(owner_id="owner", name="Roles")
    space_membership_add(space_id=space.id, user_id="m", role="member")
    read, found = _people(space.id, "owner", "m")
    owner = members.Actor("owner", found["owner"])
    before_next_transaction(
        client_events, lambda: members.space_member_remove(space=read, user_id="m", target=found["m"], actor=owner)
    )

    with pytest.raises(NotAMember):
        members.space_member_role_set(space=read, user_id="m", target=found["m"], role="viewer", actor=owner)

    assert _member_roles(space.id) == {"owner": "owner"} and Space.get(*Space.key(space.id)).member_count == 1


def _member_roles(space_id: str) -> dict[str, str]:
    pk = keys.space_pk(space_id)
    return {i["user_id"]: i["role"] for i in scan_all() if i["PK"] == pk and i["SK"].startswith(keys.MEMBER_PREFIX)}
