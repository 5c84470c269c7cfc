"""Invite policies: expiry, a limit of uses and pause on the space's one code; the guide's code by default."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from invites import assignment, joining
from invites import services as engine
from invites.policies import InvitePolicy
from invites.services import space_create
from spaces.exceptions import InvalidInviteCode
from spaces.models import Space
from tests.api_support import as_user, new_user_id
from tests.invariants import invariant_violations, scan_all
from tests.legacy import put_legacy_space

pytestmark = pytest.mark.django_db


def stored(space_id: str) -> Space:
    return Space.get(*Space.key(space_id), consistent_read=True)


def members_of(space_id: str) -> set[str]:
    return {i["user_id"] for i in scan_all() if i["PK"] == f"SPACE#{space_id}" and i["SK"].startswith("MEMBER#")}


# --- the API contract --------------------------------------------------------------------------------


def test_a_regeneration_without_a_body_keeps_the_guides_two_fields_and_no_policy(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)

    response = api_client.post(f"/api/spaces/{space_people.space.id}/invite")

    assert set(response.json()) == {"invite_code", "invite_url"}
    assert InvitePolicy.of(stored(space_people.space.id)).is_default


def test_a_regeneration_with_a_policy_answers_it(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)
    before = int(time.time())

    body = api_client.post(
        f"/api/spaces/{space_people.space.id}/invite", {"expires_in": 3600, "max_uses": 5}, format="json"
    ).json()

    assert set(body) == {"invite_code", "invite_url", "expires_at", "max_uses", "role"}
    assert body["max_uses"] == 5
    space = stored(space_people.space.id)
    assert before + 3600 <= space.invite_expires_at <= int(time.time()) + 3600
    assert space.invite_max_uses == 5


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": 0},
        {"expires_in": 31 * 24 * 3600},
        {"expires_in": "3600"},
        {"expires_in": 3600.5},
        {"max_uses": 0},
        {"max_uses": 10_001},
        {"max_uses": True},
        ["not", "an", "object"],
    ],
)
def test_an_out_of_range_or_mistyped_policy_is_400_and_changes_nothing(api_client, space_people, body) -> None:
    as_user(api_client, space_people.owner)
    code = space_people.code

    response = api_client.post(f"/api/spaces/{space_people.space.id}/invite", body, format="json")

    assert response.status_code == 400
    assert stored(space_people.space.id).invite_code == code


def test_patch_changes_the_policy_of_the_current_code_without_replacing_it(api_client, space_people) -> None:
    as_user(api_client, space_people.admin)
    code = space_people.code

    response = api_client.patch(f"/api/spaces/{space_people.space.id}/invite", {"max_uses": 3}, format="json")

    assert response.status_code == 200
    assert response.json()["invite_code"] == code
    assert (response.json()["max_uses"], response.json()["uses"], response.json()["paused"]) == (3, 0, False)
    assert stored(space_people.space.id).invite_code == code


@pytest.mark.parametrize("who", ["member", "viewer", "outsider"])
def test_only_owners_and_admins_change_a_policy(api_client, space_people, who) -> None:
    as_user(api_client, getattr(space_people, who))

    response = api_client.patch(f"/api/spaces/{space_people.space.id}/invite", {"paused": True}, format="json")

    assert response.status_code == 403
    assert not stored(space_people.space.id).invite_paused


def test_an_empty_patch_is_400(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)

    assert api_client.patch(f"/api/spaces/{space_people.space.id}/invite", {}, format="json").status_code == 400


def test_a_patch_of_a_space_without_a_code_is_409(api_client, dynamo_table) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner)
    as_user(api_client, owner)

    response = api_client.patch(f"/api/spaces/{space_id}/invite", {"paused": True}, format="json")

    assert response.status_code == 409


def test_members_see_the_policy_on_the_space(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)
    api_client.patch(f"/api/spaces/{space_people.space.id}/invite", {"max_uses": 2, "paused": True}, format="json")
    as_user(api_client, space_people.viewer)

    body = api_client.get(f"/api/spaces/{space_people.space.id}").json()

    assert (body["inviteMaxUses"], body["inviteUses"], body["invitePaused"], body["inviteExpiresAt"]) == (
        2,
        0,
        True,
        None,
    )


# --- a code that does not work answers as a replaced one ------------------------------------------------


def _joins(api_client, code: str | None) -> tuple[int, int]:
    as_user(api_client, new_user_id())
    preview = api_client.get(f"/api/invites/{code}").status_code
    join = api_client.post("/api/spaces/join", {"invite_code": code}, format="json")
    assert join.status_code != 400 or join.json() == {"detail": "Invalid invite code"}
    return preview, join.status_code


def test_a_paused_code_joins_nobody_until_unpaused(api_client, space_people) -> None:
    code = space_people.code
    engine.invite_code_policy_update(space_id=space_people.space.id, paused=True)

    assert _joins(api_client, code) == (404, 400)

    engine.invite_code_policy_update(space_id=space_people.space.id, paused=False)
    assert _joins(api_client, code) == (200, 200)


def test_an_expired_code_joins_nobody(api_client, space_people, monkeypatch) -> None:
    from invites import policies

    code = space_people.code
    engine.invite_code_policy_update(space_id=space_people.space.id, expires_in=60)
    assert _joins(api_client, code) == (200, 200)

    later = int(time.time()) + 61
    monkeypatch.setattr(policies, "now_epoch", lambda: later)
    monkeypatch.setattr(joining, "now_epoch", lambda: later)

    assert _joins(api_client, code) == (404, 400)


def test_a_used_up_code_joins_nobody_and_uses_are_counted(api_client, space_people) -> None:
    code = space_people.code
    engine.invite_code_policy_update(space_id=space_people.space.id, max_uses=2)

    assert [_joins(api_client, code) for _ in range(3)] == [(200, 200), (200, 200), (404, 400)]
    assert stored(space_people.space.id).invite_uses == 2


def test_lowering_max_uses_to_the_uses_so_far_means_used_up(api_client, space_people) -> None:
    code = space_people.code
    engine.invite_code_policy_update(space_id=space_people.space.id, max_uses=5)
    _joins(api_client, code)

    engine.invite_code_policy_update(space_id=space_people.space.id, max_uses=1)

    assert _joins(api_client, code) == (404, 400)


def test_a_regeneration_resets_the_policy_and_the_uses(api_client, space_people) -> None:
    engine.invite_code_policy_update(space_id=space_people.space.id, max_uses=1, paused=True)

    change = engine.invite_code_regenerate(space_id=space_people.space.id)

    assert InvitePolicy.of(stored(space_people.space.id)).is_default
    assert stored(space_people.space.id).invite_uses is None
    assert _joins(api_client, change.new_code) == (200, 200)


def test_legacy_spaces_without_a_policy_behave_as_before(api_client, legacy_table) -> None:
    space_id = put_legacy_space(invite_code="a3f9c2d4")

    assert _joins(api_client, "a3f9c2d4") == (200, 200)
    assert stored(space_id).invite_uses is None  # no limit: nothing counted


def test_the_backfill_gives_codes_without_a_policy(dynamo_table) -> None:
    space = stored(put_legacy_space(name="Bare"))

    [change] = assignment.invite_code_assign_if_missing(spaces=[space])

    assert change.applied
    assert InvitePolicy.of(stored(space.id)).is_default


def test_the_engine_refuses_an_expired_code_at_resolve_too(space_people, monkeypatch) -> None:
    from invites import policies

    engine.invite_code_policy_update(space_id=space_people.space.id, expires_in=60)
    later = int(time.time()) + 120
    monkeypatch.setattr(policies, "now_epoch", lambda: later)
    monkeypatch.setattr(joining, "now_epoch", lambda: later)

    with pytest.raises(InvalidInviteCode):
        joining.invite_code_resolve(typed_code=space_people.code)


# --- concurrency: the policy is checked in the join's own transaction ---------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("limit", [1, 3, 7])
def test_under_concurrent_joins_exactly_max_uses_succeed(dynamo_table, limit: int) -> None:
    space = space_create(owner_id="owner", name=f"Limited to {limit}")
    engine.invite_code_policy_update(space_id=space.id, max_uses=limit)
    barrier = threading.Barrier(16)

    def join(index: int) -> bool:
        barrier.wait()
        try:
            joining.space_join_with_code(typed_code=space.invite_code or "", user_id=f"joiner-{index}")
        except InvalidInviteCode:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(join, range(16)))

    assert outcomes.count(True) == limit
    after = stored(space.id)
    assert after.invite_uses == limit
    assert len(members_of(space.id)) == limit + 1 == after.member_count
    assert invariant_violations(require_codes=True) == []


def test_a_pause_that_lands_between_the_read_and_the_join_joins_nobody(dynamo_table, monkeypatch) -> None:
    space = space_create(owner_id="owner", name="Paused meanwhile")
    real_lookup = joining._space_holding

    def look_up_then_pause(code: str) -> Space:
        found = real_lookup(code)
        engine.invite_code_policy_update(space_id=space.id, paused=True)
        return found

    monkeypatch.setattr(joining, "_space_holding", look_up_then_pause)

    with pytest.raises(InvalidInviteCode):
        joining.space_join_with_code(typed_code=space.invite_code or "", user_id="late")
    assert members_of(space.id) == {"owner"}


def test_a_first_code_starts_without_the_policy_another_writer_left_on_the_space(api_client, dynamo_table) -> None:
    space_id = put_legacy_space(name="Left paused")
    Space(*Space.key(space_id)).update(actions=[Space.invite_paused.set(True), Space.invite_max_uses.set(1)])

    [change] = assignment.invite_code_assign_if_missing(spaces=[stored(space_id)])

    assert InvitePolicy.of(stored(space_id)).is_default
    assert _joins(api_client, change.new_code or "") == (200, 200)
