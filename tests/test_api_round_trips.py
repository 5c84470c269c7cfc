"""DynamoDB round trips per request: the budgets of the issue, counted at the botocore client.

A regression (an extra read, a retry loop, a lookup per item) fails here.
"""

from __future__ import annotations

from invites.janitor import janitor
from spaces.services import space_create
from tests.api_support import as_user, new_user_id


def test_get_space_takes_two_round_trips(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.member)
    dynamo_calls.reset()

    response = api_client.get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 200
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "Query": 1}


def test_a_refused_get_takes_one_round_trip(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.outsider)
    dynamo_calls.reset()

    assert api_client.get(f"/api/spaces/{space_people.space.id}").status_code == 403
    assert dynamo_calls.total == 1


def test_regenerate_takes_at_most_four_round_trips(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.admin)
    dynamo_calls.reset()

    with janitor.paused():
        response = api_client.post(f"/api/spaces/{space_people.space.id}/invite")
        request_path = dict(dynamo_calls.calls)
    assert janitor.flush(timeout=10.0)

    assert response.status_code == 200
    assert sum(request_path.values()) <= 4
    # Read the space with the membership, claim, put the new mapping, switch.
    assert request_path == {"BatchGetItem": 1, "PutItem": 2, "UpdateItem": 1}
    # The old code's mapping is deleted after the answer.
    assert dict(dynamo_calls.calls) == {**request_path, "BatchWriteItem": 1}


def test_regenerate_refused_takes_one_round_trip(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.viewer)
    dynamo_calls.reset()

    assert api_client.post(f"/api/spaces/{space_people.space.id}/invite").status_code == 403
    assert dynamo_calls.total == 1


def test_join_takes_at_most_four_round_trips(api_client, space_people, dynamo_calls) -> None:
    code = space_people.code
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    response = api_client.post("/api/spaces/join", {"invite_code": code}, format="json")

    assert response.status_code == 200
    assert dynamo_calls.total <= 4
    assert dict(dynamo_calls.calls) == {"GetItem": 1, "BatchGetItem": 1, "PutItem": 1, "Query": 1}


def test_list_takes_two_round_trips_for_a_page(api_client, dynamo_table, dynamo_calls) -> None:
    user = new_user_id()
    for i in range(5):
        space_create(owner_id=user, name=f"S{i}")
    as_user(api_client, user)
    dynamo_calls.reset()

    response = api_client.get("/api/spaces?limit=3")

    assert len(response.json()["results"]) == 3
    assert dict(dynamo_calls.calls) == {"Query": 1, "BatchGetItem": 1}


def test_create_takes_three_round_trips(api_client, dynamo_table, dynamo_calls) -> None:
    space_create(owner_id=new_user_id(), name="warms the table facts")
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    assert api_client.post("/api/spaces", {"name": "x"}, format="json").status_code == 201
    assert dict(dynamo_calls.calls) == {"PutItem": 2, "BatchWriteItem": 1}


def test_members_take_two_round_trips(api_client, space_people, dynamo_calls) -> None:
    as_user(api_client, space_people.owner)
    dynamo_calls.reset()

    assert api_client.get(f"/api/spaces/{space_people.space.id}/members").status_code == 200
    assert dict(dynamo_calls.calls) == {"BatchGetItem": 1, "Query": 1}


def test_preview_takes_three_round_trips(api_client, space_people, dynamo_calls) -> None:
    code = space_people.code
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    assert api_client.get(f"/api/invites/{code}").status_code == 200
    assert dict(dynamo_calls.calls) == {"GetItem": 1, "BatchGetItem": 1, "Query": 1}
