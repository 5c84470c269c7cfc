"""The spaces endpoints: create, list, retrieve and members, for every kind of caller.

These tests run without database access (no ``django_db`` mark): pytest-django
fails any relational query, which is how they show the spaces API path reads
nothing but DynamoDB.
"""

from __future__ import annotations

import pytest

from invites.services import space_create
from spaces.models import Membership
from tests.api_support import (
    add_member,
    as_user,
    new_user_id,
    people_in_a_space,
)
from tests.legacy import put_legacy_membership, put_legacy_space

SPACE_FIELDS = {
    "spaceId",
    "name",
    "description",
    "type",
    "ownerId",
    "createdAt",
    "updatedAt",
    "memberCount",
    "isPublic",
    "isOwner",
    "role",
    "inviteCode",
    "inviteExpiresAt",
    "inviteMaxUses",
    "inviteUses",
    "invitePaused",
    "inviteRole",
}

# --- create -------------------------------------------------------------------------------


def test_create_returns_the_space_in_camel_case_with_the_caller_as_owner(api_client, dynamo_table) -> None:
    user = new_user_id()

    response = as_user(api_client, user).post(
        "/api/spaces",
        {"name": "  Garden club  ", "description": "Tomatoes", "isPublic": True, "type": "hobby"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == SPACE_FIELDS
    assert body["name"] == "Garden club"
    assert body["description"] == "Tomatoes"
    assert body["isPublic"] is True
    assert body["type"] == "hobby"
    assert body["ownerId"] == user
    assert body["isOwner"] is True
    assert body["role"] == "owner"
    assert body["memberCount"] == 1
    assert len(body["inviteCode"]) == 8
    detail = api_client.get(f"/api/spaces/{body['spaceId']}").json()
    assert detail == body


def test_create_defaults_to_a_private_workspace(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces", {"name": "Plain"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["isPublic"], body["type"], body["description"]) == (False, "workspace", "")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "ok", "description": "d" * 501}, "description"),
        ({"name": "ok", "description": 7}, "description"),
        ({"name": "ok", "isPublic": "yes"}, "isPublic"),
        ({"name": "ok", "isPublic": 1}, "isPublic"),
        ({"name": "ok", "type": {"a": 1}}, "type"),
        ({"name": "ok", "type": "t" * 51}, "type"),
    ],
)
def test_create_rejects_bad_fields_with_field_errors(api_client, dynamo_table, payload, field) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input"
    assert list(body["errors"]) == [field]


def test_create_accepts_exactly_100_characters_of_name(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces", {"name": "n" * 100}, format="json")

    assert response.status_code == 201


def test_create_rejects_a_body_that_is_a_list(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces", [{"name": "x"}], format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}


def test_create_needs_a_token(api_client, dynamo_table) -> None:
    response = api_client.post("/api/spaces", {"name": "x"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"]


# --- list ----------------------------------------------------------------------------------


def test_list_shows_the_callers_spaces_newest_first_with_their_role(api_client, dynamo_table) -> None:
    user = new_user_id()
    own = [space_create(owner_id=user, name=f"Mine {i}") for i in range(3)]
    joined = space_create(owner_id=new_user_id(), name="Theirs")
    add_member(joined.id, user, "viewer")
    space_create(owner_id=new_user_id(), name="Not mine")

    response = as_user(api_client, user).get("/api/spaces")

    assert response.status_code == 200
    body = response.json()
    assert [s["name"] for s in body["results"]] == ["Theirs", "Mine 2", "Mine 1", "Mine 0"]
    assert [s["role"] for s in body["results"]] == ["viewer", "owner", "owner", "owner"]
    assert body["results"][1]["inviteCode"] == own[2].invite_code
    assert body["nextCursor"] is None


def test_list_pages_with_an_opaque_cursor_until_the_end(api_client, dynamo_table) -> None:
    user = new_user_id()
    created = [space_create(owner_id=user, name=f"S{i}").id for i in range(5)]
    as_user(api_client, user)

    seen: list[str] = []
    pages = 0
    url = "/api/spaces?limit=2"
    for _ in range(10):  # a cursor that never ends fails here instead of hanging
        body = api_client.get(url).json()
        pages += 1
        seen += [s["spaceId"] for s in body["results"]]
        if body["nextCursor"] is None:
            break
        assert created[0] not in body["nextCursor"]  # opaque: not the raw id
        url = f"/api/spaces?limit=2&cursor={body['nextCursor']}"

    assert seen == list(reversed(created))
    assert pages == 3


def test_list_with_an_exact_multiple_of_the_limit_ends_without_an_empty_page(api_client, dynamo_table) -> None:
    user = new_user_id()
    for i in range(4):
        space_create(owner_id=user, name=f"S{i}")
    as_user(api_client, user)

    first = api_client.get("/api/spaces?limit=2").json()
    second = api_client.get(f"/api/spaces?limit=2&cursor={first['nextCursor']}").json()

    assert len(second["results"]) == 2
    assert second["nextCursor"] is None


def test_list_is_empty_for_a_user_without_spaces(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).get("/api/spaces/")

    assert response.json() == {"results": [], "nextCursor": None}


def test_list_skips_memberships_whose_space_does_not_exist(api_client, dynamo_table) -> None:
    user = new_user_id()
    real = space_create(owner_id=user, name="Real")
    Membership.build("0000-half-written", user, "owner", "2030-01-01T00:00:00+00:00").save()

    body = as_user(api_client, user).get("/api/spaces").json()

    assert [s["spaceId"] for s in body["results"]] == [real.id]


def test_list_includes_legacy_spaces(api_client, dynamo_table) -> None:
    user = new_user_id()
    legacy_id = put_legacy_space(owner_id=user, name="Old one", invite_code="legacyCode1")

    body = as_user(api_client, user).get("/api/spaces").json()

    assert [(s["spaceId"], s["inviteCode"], s["createdAt"]) for s in body["results"]] == [
        (legacy_id, "legacyCode1", "2024-01-15T10:30:00")
    ]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJhZnRlciI6IngifQ", "eyJhZnRlciI6IngifQ:forged-signature", "%23", "c" * 600],
)
def test_list_rejects_a_cursor_it_did_not_issue(api_client, dynamo_table, cursor) -> None:
    response = as_user(api_client, new_user_id()).get(f"/api/spaces?cursor={cursor}")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input", "errors": {"cursor": ["Invalid cursor."]}}


def test_list_rejects_a_tampered_cursor(api_client, dynamo_table) -> None:
    user = new_user_id()
    for i in range(3):
        space_create(owner_id=user, name=f"S{i}")
    cursor = as_user(api_client, user).get("/api/spaces?limit=1").json()["nextCursor"]
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")

    assert api_client.get(f"/api/spaces?cursor={cursor}").status_code == 200
    assert api_client.get(f"/api/spaces?cursor={flipped}").status_code == 400


def test_list_rejects_another_users_cursor(api_client, dynamo_table) -> None:
    alice, bob = new_user_id(), new_user_id()
    for i in range(3):
        space_create(owner_id=alice, name=f"S{i}")
    cursor = as_user(api_client, alice).get("/api/spaces?limit=1").json()["nextCursor"]

    response = as_user(api_client, bob).get(f"/api/spaces?cursor={cursor}")

    assert response.status_code == 400


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
def test_list_rejects_a_limit_out_of_range(api_client, dynamo_table, limit) -> None:
    response = as_user(api_client, new_user_id()).get(f"/api/spaces?limit={limit}")

    assert response.status_code == 400
    assert "limit" in response.json()["errors"]


def test_list_needs_a_token(api_client, dynamo_table) -> None:
    assert api_client.get("/api/spaces").status_code == 401


# --- retrieve --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin", "member", "viewer"])
def test_members_of_every_role_see_the_space_and_its_code(api_client, space_people, who) -> None:
    response = as_user(api_client, space_people.user(who)).get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == SPACE_FIELDS
    assert body["spaceId"] == space_people.space.id
    assert body["inviteCode"] == space_people.code
    assert body["memberCount"] == 4
    assert body["role"] == who
    assert body["isOwner"] is (who == "owner")
    assert body["ownerId"] == space_people.owner


def test_a_non_member_gets_403_for_a_private_space(api_client, space_people) -> None:
    response = as_user(api_client, space_people.outsider).get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of this space"}


def test_a_non_member_sees_a_public_space_but_never_its_code(api_client, dynamo_table) -> None:
    people = people_in_a_space(is_public=True)

    response = as_user(api_client, people.outsider).get(f"/api/spaces/{people.space.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["inviteCode"] is None
    assert body["role"] is None
    assert body["isOwner"] is False
    assert body["memberCount"] == 4
    assert people.code not in response.content.decode()


def test_anonymous_gets_401_for_a_space(api_client, space_people) -> None:
    response = api_client.get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_space_is_404(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).get("/api/spaces/no-such-space")

    assert response.status_code == 404
    assert response.json() == {"detail": "Space no-such-space not found"}


@pytest.mark.parametrize("space_id", ["a%23b", "%23", "x" * 10_000, "a.b", "sp%20ace", "%C3%A4"])
def test_a_malformed_space_id_is_400_not_a_key(api_client, dynamo_table, dynamo_calls, space_id) -> None:
    response = as_user(api_client, new_user_id()).get(f"/api/spaces/{space_id}")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid space id"}
    assert dynamo_calls.total == 0


def test_a_legacy_space_with_missing_attributes_is_shown(api_client, dynamo_table) -> None:
    user = new_user_id()
    legacy_id = put_legacy_space(owner_id=user, name="Old", invite_code=None)

    body = as_user(api_client, user).get(f"/api/spaces/{legacy_id}").json()

    assert body["inviteCode"] is None
    assert body["isOwner"] is True
    assert body["memberCount"] == 1


def test_the_owner_named_on_a_legacy_space_without_a_membership_is_its_owner(api_client, dynamo_table) -> None:
    user = new_user_id()
    legacy_id = put_legacy_space(owner_id=user, invite_code="legacyCode2", with_owner_membership=False)

    body = as_user(api_client, user).get(f"/api/spaces/{legacy_id}").json()

    assert (body["role"], body["isOwner"], body["inviteCode"]) == ("owner", True, "legacyCode2")


# --- members -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin", "member", "viewer"])
def test_members_list_everyone_in_user_id_order_with_roles_and_join_times(api_client, space_people, who) -> None:
    response = as_user(api_client, space_people.user(who)).get(f"/api/spaces/{space_people.space.id}/members")

    assert response.status_code == 200
    body = response.json()
    people = [(space_people.owner, "owner"), (space_people.admin, "admin")]
    people += [(space_people.member, "member"), (space_people.viewer, "viewer")]
    assert [(m["userId"], m["role"]) for m in body["results"]] == sorted(people)
    assert all(m["joinedAt"] for m in body["results"]) and body["nextCursor"] is None


def test_members_of_a_legacy_space_list_its_membership_items(api_client, dynamo_table) -> None:
    owner = new_user_id()
    legacy_id = put_legacy_space(owner_id=owner, invite_code=None, with_owner_membership=False)
    early = new_user_id()
    put_legacy_membership(space_id=legacy_id, user_id=early, role="member")

    results = as_user(api_client, owner).get(f"/api/spaces/{legacy_id}/members").json()["results"]

    assert results == [
        {"userId": early, "role": "member", "joinedAt": results[0]["joinedAt"], "inviteCode": None, "codeSetBy": None}
    ]


@pytest.mark.parametrize(("who", "status"), [("outsider", 403), ("anonymous", 401)])
def test_members_are_for_members_only(api_client, space_people, who, status) -> None:
    response = as_user(api_client, space_people.user(who)).get(f"/api/spaces/{space_people.space.id}/members")

    assert response.status_code == status


def test_members_of_a_public_space_are_still_for_members_only(api_client, dynamo_table) -> None:
    people = people_in_a_space(is_public=True)

    response = as_user(api_client, people.outsider).get(f"/api/spaces/{people.space.id}/members")

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of this space"}


def test_members_of_a_missing_space_is_404(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).get("/api/spaces/nope/members")

    assert response.status_code == 404
    assert response.json() == {"detail": "Space nope not found"}


def test_members_with_a_malformed_space_id_is_400(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).get("/api/spaces/%23/members")

    assert response.status_code == 400
