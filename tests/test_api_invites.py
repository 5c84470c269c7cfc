"""Invite codes over HTTP: regenerate (the guide's contract), join, preview, throttling."""

from __future__ import annotations

import logging
import threading

import pytest
from django.conf import settings

from invites import services as engine
from invites.services import space_create
from spaces.models import Membership
from tests.api_support import as_user, current_code, new_user_id, people_in_a_space
from tests.invariants import invariant_violations, scan_all
from tests.legacy import put_legacy_mapping, put_legacy_space

# --- regenerate: POST /api/spaces/<id>/invite --------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_owners_and_admins_regenerate_and_get_the_guides_body(api_client, space_people, who) -> None:
    old = space_people.code

    response = as_user(api_client, space_people.user(who)).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"invite_code", "invite_url"}
    assert body["invite_code"] != old
    assert body["invite_code"] == space_people.code
    assert body["invite_url"] == f"/join/{body['invite_code']}"
    assert invariant_violations() == []


@pytest.mark.parametrize("who", ["member", "viewer", "outsider"])
def test_others_get_the_guides_403_and_the_code_stays(api_client, space_people, who) -> None:
    old = space_people.code

    response = as_user(api_client, space_people.user(who)).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only owners and admins can regenerate invite codes"}
    assert space_people.code == old


def test_anonymous_cannot_regenerate(api_client, space_people) -> None:
    response = api_client.post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 401


def test_regenerating_a_missing_space_gives_the_guides_404(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces/ghost-space/invite")

    assert response.status_code == 404
    assert response.json() == {"detail": "Space ghost-space not found"}


@pytest.mark.parametrize("space_id", ["%23", "x" * 10_000, "a%2Bb"])
def test_regenerating_with_a_malformed_id_is_400(api_client, dynamo_table, dynamo_calls, space_id) -> None:
    response = as_user(api_client, new_user_id()).post(f"/api/spaces/{space_id}/invite")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid space id"}
    assert dynamo_calls.total == 0


def test_regenerate_works_with_a_trailing_slash_and_a_json_content_type(api_client, space_people) -> None:
    response = as_user(api_client, space_people.owner).post(
        f"/api/spaces/{space_people.space.id}/invite/", data="", content_type="application/json"
    )

    assert response.status_code == 200


def test_a_legacy_space_without_a_code_gets_one_through_the_endpoint(api_client, legacy_table) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner, invite_code=None)

    response = as_user(api_client, owner).post(f"/api/spaces/{space_id}/invite")

    assert response.status_code == 200
    code = response.json()["invite_code"]
    assert current_code(space_id) == code
    joiner = new_user_id()
    assert as_user(api_client, joiner).post("/api/spaces/join", {"invite_code": code}, format="json").status_code == 200
    assert invariant_violations() == []


def test_a_legacy_code_is_replaced_and_stops_working(api_client, legacy_table) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner, invite_code="k3yLegacy_9")

    new_code = as_user(api_client, owner).post(f"/api/spaces/{space_id}/invite").json()["invite_code"]

    outsider = new_user_id()
    as_user(api_client, outsider)
    assert api_client.post("/api/spaces/join", {"invite_code": "k3yLegacy_9"}, format="json").status_code == 400
    assert api_client.get("/api/invites/k3yLegacy_9").status_code == 404
    assert api_client.get(f"/api/invites/{new_code}").status_code == 200


def test_old_codes_stop_working_after_each_regeneration(api_client, space_people) -> None:
    codes = [space_people.code]
    as_user(api_client, space_people.owner)
    for _ in range(3):
        codes.append(api_client.post(f"/api/spaces/{space_people.space.id}/invite").json()["invite_code"])

    as_user(api_client, new_user_id())
    for old in codes[:-1]:
        response = api_client.post("/api/spaces/join", {"invite_code": old}, format="json")
        assert response.status_code == 400
        assert response.json() == {"detail": "Invalid invite code"}
        assert api_client.get(f"/api/invites/{old}").status_code == 404
    assert api_client.post("/api/spaces/join", {"invite_code": codes[-1]}, format="json").status_code == 200


def test_a_concurrent_regeneration_that_won_is_reported_with_its_code(api_client, space_people, monkeypatch) -> None:
    """When another request switches the code between our read and our transaction, we return its code."""
    original_draw = engine.draw_code
    rival: dict[str, str] = {}

    def rival_switches_first(check_legacy: bool) -> str:
        if not rival:
            rival["code"] = "(running)"
            change = engine.invite_code_regenerate(space_id=space_people.space.id)
            rival["code"] = change.new_code or ""
        return original_draw(check_legacy)

    monkeypatch.setattr(engine, "draw_code", rival_switches_first)

    response = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 200
    assert response.json()["invite_code"] == rival["code"] == space_people.code
    assert invariant_violations() == []


def test_a_database_failure_gives_the_guides_500_and_logs_the_cause(
    api_client, space_people, failing_dynamo_operation, caplog
) -> None:
    old = space_people.code
    failing_dynamo_operation("TransactWriteItems", "InternalServerError", "disk on fire at node 7")

    with caplog.at_level(logging.ERROR):
        response = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 500
    assert response.json() == {"detail": "Failed to regenerate invite code"}
    assert "disk on fire" not in response.content.decode()
    assert "disk on fire" in caplog.text
    assert space_people.code == old


def test_an_unreachable_dynamodb_gives_503_before_the_regeneration_writes(
    api_client, space_people, dynamodb_unreachable
):
    # The throttle's counter lives in DynamoDB too: an outage fails closed before the engine runs (issue 21);
    # the guide's 500 stays for a failure of the regeneration's own write (above).
    response = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 503
    assert response["Retry-After"]


def test_invite_url_uses_the_configured_base(api_client, space_people, settings) -> None:
    settings.INVITE_URL_BASE = "https://spaces.example/join/"

    body = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_people.space.id}/invite").json()

    assert body["invite_url"] == f"https://spaces.example/join/{body['invite_code']}"


def test_the_default_invite_url_base_is_join() -> None:
    assert settings.INVITE_URL_BASE == "/join/"


# --- join: POST /api/spaces/join ---------------------------------------------------------------


def test_joining_with_the_code_makes_a_member_and_returns_the_space(api_client, space_people) -> None:
    joiner = new_user_id()

    response = as_user(api_client, joiner).post("/api/spaces/join", {"invite_code": space_people.code}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["spaceId"] == space_people.space.id
    assert body["role"] == "member"
    assert body["memberCount"] == 5
    assert body["inviteCode"] == space_people.code
    membership = Membership.get(*Membership.key(space_people.space.id, joiner), consistent_read=True)
    assert membership.role == "member"
    listed = api_client.get("/api/spaces").json()["results"]
    assert [s["spaceId"] for s in listed] == [space_people.space.id]


@pytest.mark.parametrize("typed", ["lower", "  padded  ", "\tlower-padded \n"])
def test_joining_with_a_lower_case_or_space_padded_new_code_works(api_client, space_people, typed) -> None:
    code = space_people.code
    variant = {"lower": code.lower(), "  padded  ": f"  {code}  ", "\tlower-padded \n": f"\t{code.lower()} \n"}[typed]

    response = as_user(api_client, new_user_id()).post("/api/spaces/join", {"invite_code": variant}, format="json")

    assert response.status_code == 200


@pytest.mark.parametrize("who", ["owner", "admin", "member", "viewer"])
def test_joining_again_is_409(api_client, space_people, who) -> None:
    response = as_user(api_client, space_people.user(who)).post(
        "/api/spaces/join", {"invite_code": space_people.code}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {"detail": "You are already a member of this space"}


def test_anonymous_cannot_join(api_client, space_people) -> None:
    response = api_client.post("/api/spaces/join", {"invite_code": space_people.code}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize("typed", ["ZZZZZZZZ", "", "   ", "AB#CD234", "x" * 10_000, "ab", "ÄBCD2345", "A B C D E"])
def test_joining_with_an_unknown_or_malformed_code_is_400(api_client, dynamo_table, typed) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces/join", {"invite_code": typed}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid invite code"}


@pytest.mark.parametrize("payload", [{}, {"invite_code": None}, {"invite_code": 12345678}, {"invite_code": ["A"]}])
def test_joining_with_a_missing_or_mistyped_code_gives_field_errors(api_client, dynamo_table, payload) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces/join", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input"
    assert list(body["errors"]) == ["invite_code"]


def test_a_stale_mapping_left_by_the_earlier_system_lets_nobody_in(api_client, legacy_table) -> None:
    space = space_create(owner_id=new_user_id(), name="Moved on")
    put_legacy_mapping(code="oldLegacy42", space_id=space.id)
    stranger = new_user_id()
    as_user(api_client, stranger)

    join = api_client.post("/api/spaces/join", {"invite_code": "oldLegacy42"}, format="json")
    preview = api_client.get("/api/invites/oldLegacy42")

    assert join.status_code == 400
    assert join.json() == {"detail": "Invalid invite code"}
    assert preview.status_code == 404
    assert Membership.count(f"SPACE#{space.id}", Membership.sk == f"MEMBER#{stranger}") == 0


def test_a_legacy_code_still_held_by_its_space_lets_people_in(api_client, legacy_table) -> None:
    space_id = put_legacy_space(owner_id=new_user_id(), invite_code="stillGood77")

    response = as_user(api_client, new_user_id()).post(
        "/api/spaces/join", {"invite_code": "stillGood77"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["spaceId"] == space_id


def test_two_people_joining_at_once_both_get_in(api_client, space_people) -> None:
    from rest_framework.test import APIClient

    results: list[int] = []
    barrier = threading.Barrier(2)

    def join() -> None:
        client = as_user(APIClient(), new_user_id())
        barrier.wait()
        results.append(client.post("/api/spaces/join", {"invite_code": space_people.code}, format="json").status_code)

    threads = [threading.Thread(target=join) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [200, 200]


# --- preview: GET /api/invites/<code> ------------------------------------------------------------


def test_preview_shows_the_space_a_code_opens(api_client, space_people) -> None:
    response = as_user(api_client, new_user_id()).get(f"/api/invites/{space_people.code.lower()}")

    assert response.status_code == 200
    assert response.json() == {
        "spaceId": space_people.space.id,
        "name": "Book club",
        "memberCount": 4,
        "isMember": False,
    }


def test_preview_tells_a_member_they_already_belong(api_client, space_people) -> None:
    response = as_user(api_client, space_people.viewer).get(f"/api/invites/{space_people.code}/")

    assert response.json()["isMember"] is True


def test_preview_of_an_unknown_code_is_404(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).get("/api/invites/ZZZZZZZZ")

    assert response.status_code == 404
    assert response.json() == {"detail": "Invite code not found"}


@pytest.mark.parametrize("code", ["%23", "AB%23CD23", "x" * 10_000, "ab"])
def test_preview_of_a_malformed_code_is_400(api_client, dynamo_table, dynamo_calls, code) -> None:
    response = as_user(api_client, new_user_id()).get(f"/api/invites/{code}")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid invite code"}
    assert dynamo_calls.total == 0


def test_preview_needs_a_token(api_client, space_people) -> None:
    assert api_client.get(f"/api/invites/{space_people.code}").status_code == 401


# --- throttling -------------------------------------------------------------------------------------


def test_joining_is_throttled_per_user_with_retry_after(api_client, dynamo_table) -> None:
    guesser = new_user_id()
    as_user(api_client, guesser)
    statuses = [
        api_client.post("/api/spaces/join", {"invite_code": f"GUESS{i:03d}"}, format="json").status_code
        for i in range(11)
    ]

    assert statuses == [400] * 10 + [429]
    throttled = api_client.post("/api/spaces/join", {"invite_code": "GUESS999"}, format="json")
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert throttled.json()["detail"].startswith("Request was throttled")
    other = as_user(api_client, new_user_id()).post("/api/spaces/join", {"invite_code": "GUESS000"}, format="json")
    assert other.status_code == 400


def test_preview_is_throttled_per_user_with_retry_after(api_client, dynamo_table) -> None:
    as_user(api_client, new_user_id())
    statuses = [api_client.get(f"/api/invites/GUESS{i:03d}").status_code for i in range(11)]

    assert statuses == [404] * 10 + [429]
    assert "Retry-After" in api_client.get("/api/invites/GUESS999").headers


def test_the_throttle_does_not_slow_down_other_endpoints(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)
    statuses = {api_client.get(f"/api/spaces/{space_people.space.id}").status_code for _ in range(12)}

    assert statuses == {200}


def test_public_and_private_spaces_alike_need_the_code_to_join(api_client, dynamo_table) -> None:
    people = people_in_a_space(is_public=True)

    response = as_user(api_client, people.outsider).post("/api/spaces/join", {"invite_code": "NOPE2345"}, format="json")

    assert response.status_code == 400


# --- items written in the guide's layout after the table was created (another writer) -------------


@pytest.mark.parametrize("legacy_code", ["a1b2c3d4", "QX7T9KMR"], ids=["lower-case-hex", "upper-case-current"])
def test_a_code_written_in_the_guides_layout_after_the_flag_joins(api_client, dynamo_table, legacy_code) -> None:
    from invites.services import legacy_codes_recorded

    assert legacy_codes_recorded()  # made by create_dynamodb_table
    space_id = put_legacy_space(name="Written by the earlier system", invite_code=legacy_code)
    as_user(api_client, new_user_id())

    preview = api_client.get(f"/api/invites/{legacy_code}")
    response = api_client.post("/api/spaces/join", {"invite_code": legacy_code}, format="json")

    assert preview.status_code == 200 and preview.json()["spaceId"] == space_id
    assert response.status_code == 200
    assert response.json()["spaceId"] == space_id
    assert response.json()["memberCount"] == 2  # the legacy owner, counted once, and the newcomer


def test_a_stale_guide_layout_mapping_written_after_the_flag_lets_nobody_in(api_client, dynamo_table) -> None:
    space_id = put_legacy_space(name="Moved on", invite_code="NEWC2345")
    put_legacy_mapping(code="OLDC2345", space_id=space_id)
    as_user(api_client, new_user_id())

    response = api_client.post("/api/spaces/join", {"invite_code": "OLDC2345"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid invite code"}
    assert api_client.get("/api/invites/OLDC2345").status_code == 404


def test_an_owner_without_a_membership_item_joining_their_own_space_stays_owner(api_client, dynamo_table) -> None:
    owner = new_user_id()
    space_id = put_legacy_space(owner_id=owner, invite_code="OWNC2345", with_owner_membership=False)
    as_user(api_client, owner)

    response = api_client.post("/api/spaces/join", {"invite_code": "OWNC2345"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "You are already a member of this space"}
    assert not [item for item in scan_all() if item["SK"].startswith("MEMBER#")]
    assert api_client.post(f"/api/spaces/{space_id}/invite").status_code == 200
