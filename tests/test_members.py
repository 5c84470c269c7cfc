"""The people of a space after the invite: provenance, the paginated list, remove, block, leave, roles, ownership,
clean-up after a leaked code; their bad input, throttling, and the member count under concurrent HTTP traffic."""

from __future__ import annotations

import logging
import os
import signal
import threading
import uuid
from collections import Counter

import pytest

from invites.joining import space_join_with_code
from invites.policies import InvitePolicy
from invites.services import invite_code_regenerate, space_create
from spaces import keys
from spaces.models import Block, Membership, Space
from tests.api_support import add_member, as_user, current_code, new_user_id, people_in_a_space
from tests.invariants import scan_all
from tests.legacy import put_legacy_membership, put_legacy_space
from tests.test_crash_safety import request, signed_access_token, wait_for


def members_url(space_id: str, rest: str = "") -> str:
    return f"/api/spaces/{space_id}/members{rest}"


def count_of(space_id: str) -> int | None:
    count = Space.get(*Space.key(space_id), consistent_read=True).member_count
    return None if count is None else int(count)


def member_items(space_id: str) -> dict[str, str]:
    """User id -> role of every MEMBER# item of the space (independently of the engine)."""
    pk = keys.space_pk(space_id)
    return {i["user_id"]: i["role"] for i in scan_all() if i["PK"] == pk and i["SK"].startswith(keys.MEMBER_PREFIX)}


def is_blocked(space_id: str, user_id: str) -> bool:
    return any(True for _ in Block.query(keys.space_pk(space_id), Block.sk == keys.block_sk(user_id)))


def join(api_client, user_id: str, code: str | None):
    return as_user(api_client, user_id).post("/api/spaces/join", {"invite_code": code}, format="json")


# --- provenance and the list -------------------------------------------------------------------


def test_a_join_records_the_code_and_who_set_it_and_only_managers_see_it(api_client, space_people) -> None:
    space_id = space_people.space.id
    code = str(invite_code_regenerate(space_id=space_id, actor_id=space_people.admin, source="api").new_code)
    joiner = new_user_id()
    assert join(api_client, joiner, code).status_code == 200

    for who in ("owner", "admin"):
        rows = as_user(api_client, space_people.user(who)).get(members_url(space_id)).json()["results"]
        row = next(r for r in rows if r["userId"] == joiner)
        assert (row["inviteCode"], row["codeSetBy"], row["role"]) == (code, space_people.admin, "member")
        owner_row = next(r for r in rows if r["userId"] == space_people.owner)
        assert (owner_row["inviteCode"], owner_row["codeSetBy"]) == (None, None)  # unknown: did not join
    for who in ("member", "viewer"):
        rows = as_user(api_client, space_people.user(who)).get(members_url(space_id)).json()["results"]
        assert all(set(r) == {"userId", "role", "joinedAt"} for r in rows)


def test_codes_assigned_by_the_admin_or_the_backfill_name_their_source(api_client, dynamo_table) -> None:
    space = space_create(owner_id=new_user_id(), name="Assigned")
    code = str(invite_code_regenerate(space_id=space.id, actor_id="7", source="admin").new_code)
    joiner = new_user_id()

    join(api_client, joiner, code)

    membership = Membership.get(*Membership.key(space.id, joiner))
    assert (membership.joined_with, membership.code_set_by) == (code, "admin")


def test_the_list_comes_in_pages_with_signed_cursors(api_client, dynamo_table) -> None:
    owner = new_user_id()
    space = space_create(owner_id=owner, name="Crowd")
    for _ in range(6):
        add_member(space.id, new_user_id(), "member")
    as_user(api_client, owner)

    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api_client.get(members_url(space.id), query).json()
        seen += [row["userId"] for row in body["results"]]
        pages, cursor = pages + 1, body["nextCursor"]
        if cursor is None:
            break

    assert pages == 3 and seen == sorted(member_items(space.id))
    other = space_create(owner_id=owner, name="Other")
    first = api_client.get(members_url(space.id), {"limit": 3}).json()["nextCursor"]
    assert api_client.get(members_url(other.id), {"cursor": first}).status_code == 400
    assert api_client.get(f"/api/spaces/{space.id}/blocks", {"cursor": first}).status_code == 400
    assert api_client.get(members_url(space.id), {"limit": 201}).status_code == 400
    assert len(api_client.get(members_url(space.id)).json()["results"]) == 7  # the default, 50, holds them all


def test_the_code_filter_lists_who_came_in_with_a_code(api_client, space_people, caplog) -> None:
    space_id = space_people.space.id
    leaked, leakers = space_people.code, [new_user_id() for _ in range(3)]
    for user in leakers:
        join(api_client, user, leaked)
    fresh = str(invite_code_regenerate(space_id=space_id, actor_id=space_people.owner, source="api").new_code)
    join(api_client, new_user_id(), fresh)
    caplog.set_level(logging.DEBUG)

    rows = as_user(api_client, space_people.admin).get(members_url(space_id), {"code": leaked.lower()}).json()

    assert sorted(r["userId"] for r in rows["results"]) == sorted(leakers)
    assert leaked not in caplog.text and leaked.lower() not in caplog.text  # the access log names the route only
    member = as_user(api_client, space_people.member)
    assert member.get(members_url(space_id), {"code": leaked}).status_code == 403
    assert as_user(api_client, space_people.owner).get(members_url(space_id), {"code": "a#b"}).status_code == 400


# --- remove, block, leave ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        *[("owner", "admin", 204), ("admin", "member", 204), ("admin", "viewer", 204), ("admin", "admin2", 403)],
        *[("member", "viewer", 403), ("viewer", "member", 403), ("outsider", "member", 403), ("admin", "owner", 403)],
    ],
)
def test_who_may_remove_whom(api_client, space_people, who, target, status) -> None:
    space_id = space_people.space.id
    admin2 = new_user_id()
    add_member(space_id, admin2, "admin")
    target_id = admin2 if target == "admin2" else space_people.user(target)

    response = as_user(api_client, space_people.user(who)).delete(members_url(space_id, f"/{target_id}"))

    assert response.status_code == status, response.json()
    assert (target_id in member_items(space_id)) == (status != 204)
    assert count_of(space_id) == len(member_items(space_id))


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/{unknown}", 404, "User {unknown} is not a member of this space"),
        ("/a%23b", 400, "Invalid user id"),
        ("/" + "x" * 65, 400, "Invalid user id"),
        ("/{owner}", 400, "You cannot remove or block yourself; leave the space instead"),
        ("/{member}?block=maybe", 400, "Invalid input"),
        ("/me?block=true", 400, "Invalid input"),
    ],
)
def test_bad_removals_are_clear_4xx(api_client, space_people, path, status, detail) -> None:
    unknown = new_user_id()
    names = {"unknown": unknown, "owner": space_people.owner, "member": space_people.member}
    as_user(api_client, space_people.owner)

    response = api_client.delete(members_url(space_people.space.id, path.format(**names)))

    assert (response.status_code, response.json()["detail"]) == (status, detail.format(**names))
    assert count_of(space_people.space.id) == 4


def test_a_removal_with_block_keeps_them_out_of_every_later_code(api_client, space_people) -> None:
    space_id = space_people.space.id
    as_user(api_client, space_people.admin)

    assert api_client.delete(members_url(space_id, f"/{space_people.member}?block=true")).status_code == 204

    fresh = str(invite_code_regenerate(space_id=space_id, actor_id=space_people.owner, source="api").new_code)
    refused = join(api_client, space_people.member, fresh)
    assert (refused.status_code, refused.json()) == (403, {"detail": "You cannot join this space"})
    blocks = as_user(api_client, space_people.owner).get(f"/api/spaces/{space_id}/blocks").json()
    assert [(b["userId"], b["blockedBy"]) for b in blocks["results"]] == [(space_people.member, space_people.admin)]
    assert space_people.member not in [r["userId"] for r in api_client.get(members_url(space_id)).json()["results"]]
    assert count_of(space_id) == len(member_items(space_id)) == 3
    assert api_client.delete(f"/api/spaces/{space_id}/blocks/{space_people.member}").status_code == 204
    assert join(api_client, space_people.member, fresh).status_code == 200
    unblock_again = as_user(api_client, space_people.owner).delete(f"/api/spaces/{space_id}/blocks/{new_user_id()}")
    assert unblock_again.status_code == 404


def test_blocking_a_non_member_stops_their_join_and_blocking_a_member_removes_them(api_client, space_people) -> None:
    space_id, stranger = space_people.space.id, new_user_id()
    as_user(api_client, space_people.owner)

    assert api_client.put(f"/api/spaces/{space_id}/blocks/{stranger}").status_code == 204
    assert api_client.put(f"/api/spaces/{space_id}/blocks/{space_people.admin}").status_code == 204

    assert join(api_client, stranger, space_people.code).status_code == 403
    assert set(member_items(space_id)) == {space_people.owner, space_people.member, space_people.viewer}
    assert is_blocked(space_id, space_people.admin) and count_of(space_id) == 3
    for who, target, status in [("member", stranger, 403), ("admin", space_people.owner, 403), ("owner", "me", 400)]:
        response = as_user(api_client, space_people.user(who)).put(f"/api/spaces/{space_id}/blocks/{target}")
        assert response.status_code == status
    assert as_user(api_client, space_people.viewer).get(f"/api/spaces/{space_id}/blocks").status_code == 403


def test_members_leave_but_the_owner_must_hand_over_first(api_client, space_people) -> None:
    space_id = space_people.space.id

    assert as_user(api_client, space_people.viewer).delete(members_url(space_id, "/me")).status_code == 204
    again = api_client.delete(members_url(space_id, "/me"))
    owner = as_user(api_client, space_people.owner).delete(members_url(space_id, "/me"))

    assert again.status_code == 404
    assert owner.status_code == 409 and "hand ownership over" in owner.json()["detail"]
    assert count_of(space_id) == len(member_items(space_id)) == 3


def test_an_owner_known_only_from_owner_id_cannot_leave(api_client, dynamo_table) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner, with_owner_membership=False)

    response = as_user(api_client, owner).delete(members_url(space_id, "/me"))

    assert response.status_code == 409


def test_leaving_a_legacy_space_without_a_count_keeps_it_uncounted(api_client, dynamo_table) -> None:
    space_id, member = put_legacy_space(owner_id=new_user_id()), new_user_id()
    put_legacy_membership(space_id=space_id, user_id=member, role="member")

    assert as_user(api_client, member).delete(members_url(space_id, "/me")).status_code == 204

    assert member not in member_items(space_id) and count_of(space_id) is None


# --- roles and ownership --------------------------------------------------------------------------


def test_the_owner_changes_roles_and_nobody_else_does(api_client, space_people) -> None:
    space_id = space_people.space.id
    url = members_url(space_id, f"/{space_people.member}")

    promoted = as_user(api_client, space_people.owner).patch(url, {"role": "admin"}, format="json")

    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert member_items(space_id)[space_people.member] == "admin"
    assert api_client.patch(url, {"role": "owner"}, format="json").status_code == 400
    assert api_client.patch(members_url(space_id, "/me"), {"role": "admin"}, format="json").status_code == 409
    unknown = api_client.patch(members_url(space_id, f"/{new_user_id()}"), {"role": "viewer"}, format="json")
    assert unknown.status_code == 404
    admin = as_user(api_client, space_people.admin)
    refused = admin.patch(members_url(space_id, f"/{space_people.viewer}"), {"role": "member"}, format="json")
    assert refused.status_code == 403


def test_ownership_is_handed_over_in_one_step(api_client, space_people) -> None:
    space_id = space_people.space.id
    as_user(api_client, space_people.owner)

    response = api_client.post(f"/api/spaces/{space_id}/owner", {"userId": space_people.viewer}, format="json")

    assert response.status_code == 204
    roles = member_items(space_id)
    assert (roles[space_people.viewer], roles[space_people.owner]) == ("owner", "admin")
    assert Space.get(*Space.key(space_id)).owner_id == space_people.viewer
    no_longer = api_client.post(f"/api/spaces/{space_id}/owner", {"userId": space_people.member}, format="json")
    assert no_longer.status_code == 403
    new_owner = as_user(api_client, space_people.viewer)
    for body, status in [({"userId": space_people.viewer}, 400), ({"userId": new_user_id()}, 404), ({}, 400)]:
        assert new_owner.post(f"/api/spaces/{space_id}/owner", body, format="json").status_code == status
    old_owner = as_user(api_client, space_people.owner)
    assert old_owner.delete(members_url(space_id, "/me")).status_code == 204  # an admin now, who may leave


def test_an_owner_known_only_from_owner_id_hands_over_and_is_counted_in(api_client, dynamo_table) -> None:
    owner, heir = new_user_id(), new_user_id()
    space_id = put_legacy_space(owner_id=owner, with_owner_membership=False)
    put_legacy_membership(space_id=space_id, user_id=heir, role="member")

    response = as_user(api_client, owner).post(f"/api/spaces/{space_id}/owner", {"userId": heir}, format="json")

    assert response.status_code == 204
    assert member_items(space_id) == {owner: "admin", heir: "owner"} and count_of(space_id) == 2


def test_a_code_grants_the_role_it_carries(api_client, space_people) -> None:
    space_id = space_people.space.id
    as_user(api_client, space_people.owner)

    body = api_client.post(f"/api/spaces/{space_id}/invite", {"role": "viewer"}, format="json").json()
    joiner = new_user_id()
    joined = join(api_client, joiner, body["invite_code"]).json()

    assert body["role"] == "viewer" and joined["role"] == "viewer" and joined["inviteRole"] == "viewer"
    assert member_items(space_id)[joiner] == "viewer"
    as_user(api_client, space_people.owner)
    state = api_client.patch(f"/api/spaces/{space_id}/invite", {"role": "member"}, format="json")
    assert state.json()["role"] == "member" and Space.get(*Space.key(space_id)).invite_role is None
    assert api_client.patch(f"/api/spaces/{space_id}/invite", {"role": "admin"}, format="json").status_code == 400


# --- clean-up after a leak ------------------------------------------------------------------------


def test_a_cleanup_removes_and_blocks_everyone_who_came_in_with_the_code(api_client, space_people, settings) -> None:
    space_id, leaked = space_people.space.id, space_people.code
    leakers = [new_user_id() for _ in range(5)]
    for user in leakers:
        space_join_with_code(typed_code=leaked, user_id=user)
    fresh = str(invite_code_regenerate(space_id=space_id, actor_id=space_people.owner, source="api").new_code)
    keeper = new_user_id()
    space_join_with_code(typed_code=fresh, user_id=keeper)
    space_people_admin = as_user(api_client, space_people.admin)
    settings.MEMBERS_CLEANUP_PER_REQUEST = 3

    first = space_people_admin.post(members_url(space_id, "/cleanup"), {"code": leaked, "block": True}, format="json")
    second = space_people_admin.post(members_url(space_id, "/cleanup"), {"code": leaked, "block": True}, format="json")

    assert first.json() == {"removed": 3, "blocked": 3, "skipped": 0, "complete": False}
    assert second.json() == {"removed": 2, "blocked": 2, "skipped": 0, "complete": True}
    people = {space_people.owner, space_people.admin, space_people.member, space_people.viewer}
    assert set(member_items(space_id)) == people | {keeper}
    assert all(is_blocked(space_id, user) for user in leakers) and not is_blocked(space_id, keeper)
    assert count_of(space_id) == len(member_items(space_id))
    assert space_people_admin.post(members_url(space_id, "/cleanup"), {"code": 5}, format="json").status_code == 400
    viewer = as_user(api_client, space_people.viewer)
    assert viewer.post(members_url(space_id, "/cleanup"), {"code": leaked}, format="json").status_code == 403


def test_member_changes_are_throttled_per_user(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)
    url = members_url(space_people.space.id, f"/{new_user_id()}")

    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 61:  # fixed windows: a boundary may fall in between
        statuses.append(api_client.delete(url).status_code)

    assert statuses[:30] == [404] * 30 and statuses[-1] == 429
    assert as_user(api_client, space_people.admin).delete(url).status_code == 404


# --- the count under concurrent HTTP traffic --------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.slow
def test_the_count_stays_exact_under_joins_removals_leaves_and_blocks_and_a_killed_worker(server) -> None:
    key = server.env["DJANGO_SECRET_KEY"]
    people = people_in_a_space(name="Busy")
    space_id, code = people.space.id, current_code(people.space.id)
    owner = signed_access_token(people.owner, key)
    outcomes: Counter[int] = Counter()
    stop = threading.Event()

    def churn(index: int) -> None:
        while not stop.is_set():
            user = str(uuid.uuid4())
            token = signed_access_token(user, key)
            outcomes[request(server, "POST", "/api/spaces/join", token, {"invite_code": code})] += 1
            if index == 0:
                outcomes[request(server, "DELETE", members_url(space_id, "/me"), token)] += 1
            elif index == 1:
                outcomes[request(server, "DELETE", members_url(space_id, f"/{user}"), owner)] += 1
            else:
                outcomes[request(server, "PUT", f"/api/spaces/{space_id}/blocks/{user}", owner)] += 1

    threads = [threading.Thread(target=churn, args=(n % 3,)) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: outcomes[204] >= 6, seconds=60)
        os.kill(server.worker_pids()[0], signal.SIGKILL)  # mid-burst: its requests in flight are cut off
        wait_for(lambda: outcomes[204] >= 18, seconds=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert outcomes[204] >= 18 and outcomes[500] == 0, outcomes
    assert count_of(space_id) == len(member_items(space_id))
    blocked = {i["user_id"] for i in scan_all() if i["PK"] == keys.space_pk(space_id) and "BLOCK#" in i["SK"]}
    assert blocked and not blocked & set(member_items(space_id))


@pytest.mark.django_db
def test_the_join_page_says_which_role_the_link_grants(client, space_people) -> None:
    space_id = space_people.space.id
    code = str(invite_code_regenerate(space_id=space_id, policy=InvitePolicy(role="viewer")).new_code)

    page = client.get(f"/join/{code}").content.decode()

    assert "This link lets you join as a viewer." in page


def test_an_unreachable_table_is_a_503_with_retry_after_on_every_people_endpoint(
    api_client, space_people, dynamodb_unreachable
) -> None:
    base, other = f"/api/spaces/{space_people.space.id}", new_user_id()
    as_user(api_client, space_people.owner)
    requests: list[tuple[str, str, dict[str, str] | None]] = [("get", "/members", None), ("get", "/blocks", None)]
    requests += [("delete", f"/members/{other}", None)]
    requests += [("patch", f"/members/{other}", {"role": "viewer"}), ("post", "/owner", {"userId": other})]
    requests += [
        ("put", f"/blocks/{other}", None),
        ("delete", f"/blocks/{other}", None),
        ("delete", "/members/me", None),
    ]
    requests += [("post", "/members/cleanup", {"code": "ABCDEFGH"})]

    for method, path, body in requests:
        response = getattr(api_client, method)(base + path, body, format="json")
        assert (response.status_code, response.headers.get("Retry-After")) == (503, "5"), path
