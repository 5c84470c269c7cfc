"""DynamoDB round trips per request: the budgets, counted at the botocore client.

A regression (an extra read, a retry loop, a lookup per item) fails here.
"""

from __future__ import annotations

import pytest

from invites.services import space_create
from tests.api_support import as_user, new_user_id
from tests.legacy import put_legacy_space


def test_get_space_takes_one_round_trip(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.member)
    dynamo_calls.reset()

    response = api_client.get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 200
    assert response.json()["memberCount"] == 4
    # The space with the caller's membership; the member count is on the space.
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1}


def test_get_of_a_legacy_space_without_a_count_takes_two_round_trips(api_client, dynamo_table, dynamo_calls) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner)
    as_user(api_client, owner)
    dynamo_calls.reset()

    response = api_client.get(f"/api/spaces/{space_id}")

    assert response.status_code == 200
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "Query": 1}


def test_a_refused_get_takes_one_round_trip(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.outsider)
    dynamo_calls.reset()

    assert api_client.get(f"/api/spaces/{space_people.space.id}").status_code == 403
    assert dynamo_calls.total == 1


def test_regenerate_takes_two_round_trips(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.admin)
    dynamo_calls.reset()

    response = api_client.post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 200
    # The space with the membership, then one transaction; nothing follows the answer.
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "TransactWriteItems": 1}


def test_regenerate_refused_takes_one_round_trip(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.viewer)
    dynamo_calls.reset()

    assert api_client.post(f"/api/spaces/{space_people.space.id}/invite").status_code == 403
    assert dynamo_calls.total == 1


def test_join_takes_three_round_trips(api_client, space_people, dynamo_calls) -> None:
    code = space_people.code
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    response = api_client.post("/api/spaces/join", {"invite_code": code}, format="json")

    assert response.status_code == 200
    assert response.json()["memberCount"] == 5
    # The claim, the space, one transaction (the membership and the count).
    assert dict(dynamo_calls.calls) == {"GetItem": 2, "TransactWriteItems": 1}


def test_join_with_an_unclaimed_legacy_code_takes_at_most_five_round_trips(
    api_client, dynamo_table, dynamo_calls
) -> None:
    put_legacy_space(invite_code="a1b2c3d4")
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    response = api_client.post("/api/spaces/join", {"invite_code": "a1b2c3d4"}, format="json")

    assert response.status_code == 200
    assert dynamo_calls.total <= 5
    # The missing claim, the mapping's partition, the space, its members counted once, the transaction.
    assert dict(dynamo_calls.calls) == {"GetItem": 2, "Query": 2, "TransactWriteItems": 1}


def test_list_takes_two_round_trips_for_a_page(api_client, dynamo_table, dynamo_calls) -> None:
    user = new_user_id()
    for i in range(5):
        space_create(owner_id=user, name=f"S{i}")
    as_user(api_client, user)
    dynamo_calls.reset()

    response = api_client.get("/api/spaces?limit=3")

    assert len(response.json()["results"]) == 3
    assert dict(dynamo_calls.calls) == {"Query": 1, "BatchGetItem": 1}


def test_create_takes_one_round_trip(api_client, dynamo_table, dynamo_calls) -> None:
    space_create(owner_id=new_user_id(), name="warms the table facts")
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    assert api_client.post("/api/spaces", {"name": "x"}, format="json").status_code == 201
    assert dict(dynamo_calls.calls) == {"TransactWriteItems": 1}


def test_members_take_two_round_trips(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.owner)
    dynamo_calls.reset()

    assert api_client.get(f"/api/spaces/{space_people.space.id}/members").status_code == 200
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "Query": 1}


@pytest.mark.parametrize("query", [{"limit": 2}, {"code": "ABCDEFGH"}])
def test_a_members_page_takes_two_round_trips(api_client, space_people, dynamo_calls, query) -> None:
    as_user(api_client, space_people.owner)
    dynamo_calls.reset()

    assert api_client.get(f"/api/spaces/{space_people.space.id}/members", query).status_code == 200
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "Query": 1}


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("owner", "delete", "/members/{member}", None),  # remove
        ("owner", "delete", "/members/{member}?block=true", None),  # remove and block
        ("viewer", "delete", "/members/me", None),  # leave
        ("owner", "patch", "/members/{member}", {"role": "viewer"}),  # role change
        ("admin", "put", "/blocks/{outsider}", None),  # block
        ("owner", "post", "/owner", {"userId": "{admin}"}),  # hand ownership over
    ],
)
def test_a_member_change_takes_one_read_and_one_transaction(
    api_client, space_people, dynamo_calls, who, method, path, body
) -> None:
    names = {name: getattr(space_people, name) for name in ("member", "outsider", "admin")}
    as_user(api_client, getattr(space_people, who))
    dynamo_calls.reset()

    url = f"/api/spaces/{space_people.space.id}{path.format(**names)}"
    response = getattr(api_client, method)(url, {k: v.format(**names) for k, v in (body or {}).items()}, format="json")

    assert response.status_code in (200, 204), response.json()
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "TransactWriteItems": 1}


def test_preview_takes_two_round_trips(api_client, space_people, dynamo_calls) -> None:
    code = space_people.code
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    assert api_client.get(f"/api/invites/{code}").status_code == 200
    assert dict(dynamo_calls.calls) == {"GetItem": 1, "BatchGetItem": 1}
