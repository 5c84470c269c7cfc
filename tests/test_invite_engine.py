"""The invite-code engine against the moto server: each operation, legacy data, failures."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from pynamodb.exceptions import PynamoDBException

from invites import assignment, codes, joining
from invites import services as engine
from invites.services import space_create
from spaces.exceptions import (
    AlreadyMember,
    DynamoUnavailable,
    InvalidInviteCode,
    InviteCodeUnavailable,
    SpaceNotFound,
)
from spaces.models import CodeClaim, InviteMapping, Membership, Space
from spaces.selectors import space_with_membership
from spaces.table import table_flag_set
from tests.invariants import invariant_violations, mapped_codes, resolves_to, scan_all
from tests.legacy import put_legacy_mapping, put_legacy_space

pytestmark = pytest.mark.django_db


def scripted_codes(*first: str) -> Iterator[str]:
    """The given codes in order, then fresh random ones."""
    return itertools.chain(first, iter(codes.generate_code, None))


def force_codes(monkeypatch: pytest.MonkeyPatch, *first: str) -> None:
    sequence = scripted_codes(*first)
    monkeypatch.setattr(codes, "generate_code", lambda: next(sequence))


# --- codes ------------------------------------------------------------------------


def test_generated_codes_use_the_unambiguous_alphabet() -> None:
    drawn = {codes.generate_code() for _ in range(500)}
    assert len(drawn) == 500
    for code in drawn:
        assert len(code) == 8
        assert set(code) <= set(codes.ALPHABET)
    assert not set("0O1IL") & set(codes.ALPHABET)


@pytest.mark.parametrize("typed", ["", "   ", "AB#CD234", "x" * 10_000, "ABC", "AB CD2345", "ÄBCD2345"])
def test_malformed_codes_are_refused_before_any_lookup(typed: str, dynamo_table: object, dynamo_calls) -> None:
    with pytest.raises(InvalidInviteCode):
        joining.invite_code_resolve(typed_code=typed)
    assert dynamo_calls.total == 0


# --- create -------------------------------------------------------------------------


def test_create_space_writes_space_owner_membership_and_code(dynamo_table: object) -> None:
    space = space_create(owner_id="owner-1", name="Garden club", description="Plants", is_public=True)

    stored, membership = space_with_membership(space_id=space.id, user_id="owner-1")
    assert stored.name == "Garden club"
    assert stored.invite_code == space.invite_code
    assert codes.is_new_format(space.invite_code)
    assert membership is not None and membership.role == "owner"
    assert resolves_to(space.invite_code) == space.id
    assert invariant_violations(require_codes=True) == []


def test_a_create_whose_transaction_fails_leaves_nothing(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, failing_dynamo_operation
) -> None:
    force_codes(monkeypatch, "FAILED22")
    failing_dynamo_operation("TransactWriteItems", "InternalServerError", "the request failed")

    with pytest.raises(PynamoDBException):
        space_create(owner_id="owner-1", name="Never")

    assert scan_all() == [item for item in scan_all() if item["PK"].startswith("TABLEFLAG#")]
    assert resolves_to("FAILED22") is None


def test_concurrent_looking_creates_never_share_a_code(dynamo_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    first = space_create(owner_id="a", name="First")
    force_codes(monkeypatch, first.invite_code, first.invite_code.lower())

    second = space_create(owner_id="b", name="Second")

    assert second.invite_code != first.invite_code
    assert invariant_violations(require_codes=True) == []


def test_claim_gives_up_with_a_clear_error_after_bounded_attempts(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    taken = space_create(owner_id="a", name="Taken").invite_code
    monkeypatch.setattr(codes, "generate_code", lambda: taken)

    with pytest.raises(InviteCodeUnavailable):
        space_create(owner_id="b", name="Unlucky")


# --- regenerate ---------------------------------------------------------------------------


def test_regenerate_kills_the_old_code_and_stores_the_new_one(dynamo_table: object) -> None:
    space = space_create(owner_id="owner-1", name="Team")

    change = engine.invite_code_regenerate(space_id=space.id)

    assert change.old_code == space.invite_code
    assert change.new_code != space.invite_code
    assert resolves_to(change.old_code) is None
    assert resolves_to(change.new_code) == space.id
    stored, _ = space_with_membership(space_id=space.id, user_id=None)
    assert stored.invite_code == change.new_code
    assert invariant_violations(require_codes=True) == []


def test_regenerate_gives_a_code_to_a_legacy_space_without_one(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="My Workspace")

    change = engine.invite_code_regenerate(space_id=space_id)

    assert change.old_code is None
    assert resolves_to(change.new_code) == space_id
    assert invariant_violations(require_codes=True) == []


def test_regenerate_replaces_a_legacy_code_and_its_mapping(dynamo_table: object) -> None:
    space_id = put_legacy_space(invite_code="a3f9c2d4")
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(space_id))]).get(space_id)

    change = engine.invite_code_regenerate(space_id=space_id)

    assert resolves_to("a3f9c2d4") is None
    assert resolves_to(change.new_code) == space_id
    assert invariant_violations(require_codes=True) == []


def test_regenerate_of_a_missing_space_is_a_distinct_error(dynamo_table: object) -> None:
    with pytest.raises(SpaceNotFound) as raised:
        engine.invite_code_regenerate(space_id="no-such-space")
    assert str(raised.value) == "Space no-such-space not found"
    assert not any(item["PK"].startswith("INVITE#") for item in scan_all())


def test_regenerate_with_the_space_in_hand_is_one_transaction(dynamo_table: object, dynamo_calls) -> None:
    space, _ = space_with_membership(space_id=space_create(owner_id="o", name="S").id, user_id="o")
    dynamo_calls.reset()

    change = engine.invite_code_regenerate(space_id=space.id, space=space)

    # Claim, new mapping, switch and the old mapping's delete, all or nothing.
    assert dict(dynamo_calls.calls) == {"TransactWriteItems": 1}
    assert mapped_codes(space.id) == {change.new_code}
    assert invariant_violations() == []


def test_a_stale_copy_of_the_space_never_overwrites_a_newer_code(dynamo_table: object) -> None:
    created = space_create(owner_id="o", name="S")
    stale_copy, _ = space_with_membership(space_id=created.id, user_id=None)
    newer = engine.invite_code_regenerate(space_id=created.id)

    change = engine.invite_code_regenerate(space_id=created.id, space=stale_copy)

    # The code it read was already replaced: the newer code stands.
    assert change.applied is False
    assert change.new_code == newer.new_code
    assert resolves_to(newer.new_code) == created.id
    assert invariant_violations(require_codes=True) == []


# --- assign_if_missing -------------------------------------------------------------------


def test_assign_if_missing_gives_codes_only_to_spaces_without_one(dynamo_table: object) -> None:
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(3)]
    coded = space_create(owner_id="o", name="Coded")
    spaces = [Space.get(*Space.key(space_id)) for space_id in [*bare, coded.id]]

    changes = assignment.invite_code_assign_if_missing(spaces=spaces)

    assert {change.space_id for change in changes} == set(bare)
    assert all(change.applied and change.old_code is None for change in changes)
    assert Space.get(*Space.key(coded.id)).invite_code == coded.invite_code
    assert invariant_violations(require_codes=True) == []


def test_assign_if_missing_never_overwrites_a_code_that_appeared_after_the_read(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Racy")
    read_before = Space.get(*Space.key(space_id))
    given_meanwhile = engine.invite_code_regenerate(space_id=space_id).new_code

    (change,) = assignment.invite_code_assign_if_missing(spaces=[read_before])

    assert change.applied is False
    assert Space.get(*Space.key(space_id)).invite_code == given_meanwhile
    assert invariant_violations(require_codes=True) == []


def test_assign_if_missing_is_idempotent(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="Once")
    assignment.invite_code_assign_if_missing(spaces=[Space.get(*Space.key(space_id))])
    code = Space.get(*Space.key(space_id)).invite_code

    again = assignment.invite_code_assign_if_missing(spaces=[Space.get(*Space.key(space_id))])

    assert again == []
    assert Space.get(*Space.key(space_id)).invite_code == code


# --- resolve and join ---------------------------------------------------------------------------


def test_join_accepts_lower_case_and_padding_for_new_codes(dynamo_table: object) -> None:
    space = space_create(owner_id="owner", name="Club")

    joined = joining.space_join_with_code(typed_code=f"  {space.invite_code.lower()}\t", user_id="guest")

    assert joined.id == space.id
    _, membership = space_with_membership(space_id=space.id, user_id="guest")
    assert membership is not None and membership.role == "member"
    assert membership.gsi1pk == "USER#guest"


def test_joining_twice_is_refused(dynamo_table: object) -> None:
    space = space_create(owner_id="owner", name="Club")
    joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")

    with pytest.raises(AlreadyMember):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")


def test_a_join_after_regeneration_cannot_use_the_old_code(dynamo_table: object) -> None:
    space = space_create(owner_id="owner", name="Club")
    engine.invite_code_regenerate(space_id=space.id)

    with pytest.raises(InvalidInviteCode):
        joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")
    _, membership = space_with_membership(space_id=space.id, user_id="guest")
    assert membership is None


def test_join_takes_three_round_trips(dynamo_table: object, dynamo_calls) -> None:
    space = space_create(owner_id="owner", name="Club")
    dynamo_calls.reset()

    joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")

    # The claim, the space, and one transaction for the membership and the count.
    assert dict(dynamo_calls.calls) == {"GetItem": 2, "TransactWriteItems": 1}


@pytest.mark.parametrize("legacy_code", ["a3f9c2d4", "Xy_9-kQz", "ZZZZ2345"])
def test_legacy_codes_resolve_as_stored_before_and_after_recording(legacy_table: object, legacy_code: str) -> None:
    space_id = put_legacy_space(invite_code=legacy_code)
    assert resolves_to(legacy_code) == space_id

    assert assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(space_id))]).get(space_id) is None
    table_flag_set(engine.LEGACY_CODES_RECORDED, by="test")

    assert resolves_to(legacy_code) == space_id
    assert resolves_to(f" {legacy_code.upper()} ") == space_id


def test_a_stale_legacy_mapping_lets_nobody_in(legacy_table: object) -> None:
    space_id = put_legacy_space(invite_code="newcode9")
    put_legacy_mapping(code="oldcode9", space_id=space_id)
    put_legacy_mapping(code="gonecode", space_id="deleted-space")

    for typed in ("oldcode9", "gonecode"):
        with pytest.raises(InvalidInviteCode):
            joining.space_join_with_code(typed_code=typed, user_id="intruder")
    assert resolves_to("newcode9") == space_id


def test_a_claim_left_by_a_crash_does_not_open_the_space(dynamo_table: object) -> None:
    space = space_create(owner_id="owner", name="Club")
    CodeClaim.build("ORPHAN22", space.id, "2024-01-01T00:00:00").save()
    InviteMapping.build("ORPHAN22", space.id, "2024-01-01T00:00:00").save()

    assert resolves_to("ORPHAN22") is None


def test_new_codes_never_equal_an_unrecorded_legacy_code(legacy_table: object, monkeypatch: pytest.MonkeyPatch) -> None:
    put_legacy_space(invite_code="ABCD2345")
    force_codes(monkeypatch, "ABCD2345")

    space = space_create(owner_id="o", name="New")

    assert space.invite_code != "ABCD2345"


def test_new_codes_never_equal_a_recorded_legacy_code_of_another_case(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy_id = put_legacy_space(invite_code="abcd2345")
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(legacy_id))]).get(legacy_id)
    force_codes(monkeypatch, "ABCD2345")

    space = space_create(owner_id="o", name="New")

    assert space.invite_code != "ABCD2345"
    assert resolves_to("ABCD2345") == legacy_id


def test_recording_a_code_another_space_claims_reports_the_duplicate(dynamo_table: object) -> None:
    first = put_legacy_space(invite_code="dupe2345")
    second = put_legacy_space(invite_code="DUPE2345", with_mapping=False)

    assert assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(first))]).get(first) is None
    assert assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(second))]).get(second) == first


def test_members_of_a_space_are_readable_after_join(dynamo_table: object) -> None:
    space = space_create(owner_id="owner", name="Club")
    joining.space_join_with_code(typed_code=space.invite_code, user_id="guest")

    roles = {m.user_id: m.role for m in Membership.query(f"SPACE#{space.id}", Membership.sk.startswith("MEMBER#"))}

    assert roles == {"owner": "owner", "guest": "member"}


# --- an unreachable database -------------------------------------------------------------------


def test_an_unreachable_endpoint_is_a_clear_error(dynamodb_unreachable: object) -> None:
    with pytest.raises(DynamoUnavailable) as raised:
        engine.invite_code_regenerate(space_id="any")

    assert "cannot be reached" in str(raised.value)
