"""The admin's half of the people of a space: how each member came in, the blocked users, remove, remove and block,
unblock, and the clean-up after a leaked code. Effects are checked in DynamoDB itself (items and ``member_count``)."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.models import LogEntry

from invites.joining import space_join_with_code
from invites.services import invite_code_regenerate, space_create
from spaces import keys
from spaces.exceptions import Blocked
from spaces.members import space_member_remove
from spaces.models import ROLE_MEMBER, Space
from tests.admin_pages import client_for, message_texts, parse, url
from tests.api_support import add_member
from tests.invariants import scan_all

pytestmark = pytest.mark.django_db

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def people_items(space_id: str, prefix: str) -> set[str]:
    """User ids of the space's MEMBER# (or BLOCK#) items, read independently of the engine."""
    pk = keys.space_pk(space_id)
    return {i["user_id"] for i in scan_all() if i["PK"] == pk and i["SK"].startswith(prefix)}


def members_of(space_id: str) -> set[str]:
    return people_items(space_id, keys.MEMBER_PREFIX)


def blocked_in(space_id: str) -> set[str]:
    return people_items(space_id, keys.BLOCK_PREFIX)


def count_of(space_id: str) -> int:
    return int(Space.get(*Space.key(space_id), consistent_read=True).member_count)


def log_messages(space_id: str) -> list[str]:
    return [entry.get_change_message() for entry in LogEntry.objects.filter(object_id=space_id).order_by("id")]


def club_with_joiners(owner_id: str, joiners: int) -> tuple[Space, list[str]]:
    space = space_create(owner_id=owner_id, name="Chess Night")
    users = [str(uuid.uuid4()) for _ in range(joiners)]
    for user_id in users:
        space_join_with_code(typed_code=space.invite_code, user_id=user_id)
    return space, users


def remove(client, space_id: str, user_id: str, *, block: bool = False, confirm: bool = True):
    fields = {"block": "yes" if block else "no"} | ({"confirm": "yes"} if confirm else {})
    return client.post(url("member_remove", space_id, user_id), fields)


# --- the page ------------------------------------------------------------------------------------


def test_the_page_shows_each_members_role_and_the_code_they_came_in_with_and_who_set_it(
    dynamo_table: object, admin_users
) -> None:
    owner = admin_users["changer"]
    space, (first,) = club_with_joiners(str(owner.pk), 1)
    newer = str(invite_code_regenerate(space_id=space.id, actor_id=str(owner.pk), source="admin").new_code)
    space_join_with_code(typed_code=newer, user_id="second-joiner")
    add_member(space.id, "from-before", ROLE_MEMBER)

    response = client_for(admin_users["viewer"]).get(url("change", space.id))

    rows = {row["membership"].user_id: row for row in response.context["members"]}
    assert {user: row["membership"].role for user, row in rows.items()} == {
        str(owner.pk): "owner",
        first: "member",
        "second-joiner": "member",
        "from-before": "member",
    }
    assert (rows[first]["membership"].joined_with, rows[first]["by"]) == (space.invite_code, "changer")
    assert (rows["second-joiner"]["membership"].joined_with, rows["second-joiner"]["by"]) == (newer, "admin")
    content = response.content.decode()
    assert f'code <span class="invite-code">{space.invite_code}</span>, set by changer' in content
    assert f'code <span class="invite-code">{newer}</span>, set by admin' in content
    provenance = content.split('data-user-id="from-before"')[1].split("</tr>")[0]
    assert '<td class="member-provenance">unknown</td>' in provenance


def test_the_page_lists_blocked_users_apart_from_the_members(dynamo_table: object, admin_users) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)
    space_member_remove(space=Space.get(*Space.key(space.id)), user_id="troll-7", target=None, actor=None, block=True)

    response = client_for(admin_users["changer"]).get(url("change", space.id))

    assert [row["block"].user_id for row in response.context["blocked"]] == ["troll-7"]
    assert {row["membership"].user_id for row in response.context["members"]} == {"owner-1", joiner}
    actions = {form.action for form in parse(response).forms}
    assert url("unblock", space.id, "troll-7") in actions
    assert url("member_remove", space.id, joiner) in actions
    assert url("member_remove", space.id, "owner-1") not in actions  # the owner stays


def test_staff_who_may_only_view_see_no_buttons_and_their_posts_are_refused(dynamo_table: object, admin_users) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)
    client = client_for(admin_users["viewer"])

    page = parse(client.get(url("change", space.id)))
    refused = [remove(client, space.id, joiner).status_code, client.post(url("cleanup", space.id)).status_code]

    assert not [form for form in page.forms if form.method == "post" and "dynamospace" in (form.action or "")]
    assert refused == [403, 403]
    assert joiner in members_of(space.id)


def test_a_get_never_writes(dynamo_table: object, admin_users, dynamo_calls) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)
    client = client_for(admin_users["superuser"])
    dynamo_calls.reset()

    page = client.get(url("change", space.id))
    gets = [client.get(address).status_code for address in (url("member_remove", space.id, joiner),
            url("unblock", space.id, joiner), url("cleanup", space.id))]  # fmt: skip

    assert page.status_code == 200 and gets == [405, 405, 405]
    assert not WRITES & set(dynamo_calls.calls)
    assert members_of(space.id) == {"owner-1", joiner}


# --- remove, block, unblock ----------------------------------------------------------------------


def test_removing_asks_first_and_changes_nothing_until_confirmed(dynamo_table: object, admin_users) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)

    response = remove(client_for(admin_users["changer"]), space.id, joiner, block=True, confirm=False)

    assert response.status_code == 200
    assert "cannot join again through any code, old or new, until unblocked" in response.content.decode()
    (form,) = [form for form in parse(response).forms if form.inputs.get("confirm") == "yes"]
    assert form.action == url("member_remove", space.id, joiner) and form.inputs["block"] == "yes"
    assert members_of(space.id) == {"owner-1", joiner} and count_of(space.id) == 2


def test_a_confirmed_removal_deletes_the_member_keeps_the_count_exact_and_is_logged(
    dynamo_table: object, admin_users
) -> None:
    space, (leaving, staying) = club_with_joiners("owner-1", 2)
    client = client_for(admin_users["changer"])

    response = remove(client, space.id, leaving)

    assert response.status_code == 302 and response["Location"] == url("change", space.id)
    assert members_of(space.id) == {"owner-1", staying} and count_of(space.id) == 2
    assert blocked_in(space.id) == set()
    assert log_messages(space.id) == [f"Removed member {leaving}."]
    assert message_texts(response) == [f"Space “Chess Night” ({space.id}): Removed member {leaving}."]


def test_remove_and_block_keeps_them_out_until_unblocked(dynamo_table: object, admin_users) -> None:
    space, (troll,) = club_with_joiners("owner-1", 1)
    client = client_for(admin_users["changer"])

    remove(client, space.id, troll, block=True)

    assert members_of(space.id) == {"owner-1"} and count_of(space.id) == 1 and blocked_in(space.id) == {troll}
    with pytest.raises(Blocked):
        space_join_with_code(typed_code=space.invite_code, user_id=troll)

    response = client.post(url("unblock", space.id, troll))

    assert response.status_code == 302 and blocked_in(space.id) == set()
    assert count_of(space.id) == 1  # unblocking admits nobody by itself
    assert log_messages(space.id) == [f"Removed and blocked member {troll}.", f"Unblocked user {troll}."]
    space_join_with_code(typed_code=space.invite_code, user_id=troll)
    assert members_of(space.id) == {"owner-1", troll} and count_of(space.id) == 2


def test_removing_someone_who_is_not_a_member_is_a_clear_message_not_a_500(dynamo_table: object, admin_users) -> None:
    space, _joiners = club_with_joiners("owner-1", 1)

    response = remove(client_for(admin_users["changer"]), space.id, "nobody-here", confirm=False)

    assert response.status_code == 302 and response["Location"] == url("change", space.id)
    expected = f"User nobody-here was not removed from space {space.id}: User nobody-here is not a member of this space"
    assert message_texts(response) == [expected]
    assert count_of(space.id) == 2 and blocked_in(space.id) == set() and log_messages(space.id) == []


def test_the_owner_cannot_be_removed_from_the_admin(dynamo_table: object, admin_users) -> None:
    space, _joiners = club_with_joiners("owner-1", 1)

    response = remove(client_for(admin_users["changer"]), space.id, "owner-1")

    (text,) = message_texts(response)
    assert text.endswith("The owner cannot leave or be removed; hand ownership over to another member first")
    assert "owner-1" in members_of(space.id) and count_of(space.id) == 2


def test_unblocking_someone_who_is_not_blocked_is_a_clear_message(dynamo_table: object, admin_users) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)

    response = client_for(admin_users["changer"]).post(url("unblock", space.id, joiner))

    expected = f"User {joiner} was not unblocked in space {space.id}: User {joiner} is not blocked in this space"
    assert response.status_code == 302 and message_texts(response) == [expected]
    assert log_messages(space.id) == []


def test_a_missing_space_sends_back_to_the_list_with_a_message(dynamo_table: object, admin_users) -> None:
    response = remove(client_for(admin_users["changer"]), "no-such-space", "someone")

    assert response["Location"] == url("changelist")
    assert message_texts(response) == ["Space no-such-space not found"]


def test_a_removal_without_the_csrf_token_is_refused(dynamo_table: object, admin_users) -> None:
    space, (joiner,) = club_with_joiners("owner-1", 1)
    client = client_for(admin_users["changer"], enforce_csrf_checks=True)

    refused = remove(client, space.id, joiner)
    (form,) = [f for f in parse(client.get(url("change", space.id))).forms if f.inputs.get("block") == "no"]
    confirmation = parse(client.post(str(form.action), form.inputs))
    (confirm,) = [f for f in confirmation.forms if f.inputs.get("confirm") == "yes"]
    accepted = client.post(str(confirm.action), confirm.inputs)

    assert refused.status_code == 403 and accepted.status_code == 302
    assert members_of(space.id) == {"owner-1"}


def test_an_unreachable_dynamodb_during_a_removal_is_a_message_not_a_500(
    dynamodb_unreachable: object, admin_users
) -> None:
    response = remove(client_for(admin_users["changer"]), "some-space", "someone")

    assert response.status_code == 302
    (text,) = message_texts(response)
    assert text.startswith("DynamoDB cannot be reached")


# --- the clean-up after a leak -------------------------------------------------------------------


def test_the_cleanup_removes_and_blocks_exactly_those_who_came_in_with_the_code(
    dynamo_table: object, admin_users
) -> None:
    space, leaked_in = club_with_joiners("owner-1", 3)
    leaked = space.invite_code
    fresh = str(invite_code_regenerate(space_id=space.id, actor_id=None, source="admin").new_code)
    space_join_with_code(typed_code=fresh, user_id="via-fresh")
    add_member(space.id, "from-before", ROLE_MEMBER)
    client = client_for(admin_users["changer"])

    asked = client.post(url("cleanup", space.id), {"code": f"  {leaked.lower()} ", "block": "yes"})
    assert asked.status_code == 200 and members_of(space.id) == {"owner-1", *leaked_in, "via-fresh", "from-before"}
    (form,) = [form for form in parse(asked).forms if form.inputs.get("confirm") == "yes"]
    response = client.post(str(form.action), form.inputs)

    assert members_of(space.id) == {"owner-1", "via-fresh", "from-before"} and count_of(space.id) == 3
    assert blocked_in(space.id) == set(leaked_in)
    done = f"Removed and blocked 3 members who came in with invite code {leaked.lower()}."  # as typed
    assert log_messages(space.id) == [done]
    assert message_texts(response) == [f"Space “Chess Night” ({space.id}): {done}"]


def test_the_cleanup_stops_at_its_cap_and_says_to_run_it_again(dynamo_table: object, admin_users, settings) -> None:
    settings.MEMBERS_CLEANUP_PER_REQUEST = 2
    space, leaked_in = club_with_joiners("owner-1", 3)
    client = client_for(admin_users["changer"])
    fields = {"code": space.invite_code, "confirm": "yes"}

    first = message_texts(client.post(url("cleanup", space.id), fields))
    assert len(members_of(space.id) & set(leaked_in)) == 1 and count_of(space.id) == 2
    client.get(url("change", space.id))  # shows (and so clears) the first request's messages
    second = message_texts(client.post(url("cleanup", space.id), fields))

    assert first[0].endswith(f"Removed 2 members who came in with invite code {space.invite_code}.")
    assert first[1].startswith("This request stopped at its cap or its time budget: run it again")
    assert second == [
        f"Space “Chess Night” ({space.id}): Removed 1 member who came in with invite code {space.invite_code}."
    ]
    assert members_of(space.id) == {"owner-1"} and count_of(space.id) == 1 and blocked_in(space.id) == set()


def test_the_cleanup_refuses_what_is_not_a_code(dynamo_table: object, admin_users) -> None:
    space, joiners = club_with_joiners("owner-1", 1)

    response = client_for(admin_users["changer"]).post(url("cleanup", space.id), {"code": "no way!", "confirm": "yes"})

    assert message_texts(response) == ["“no way!” is not an invite code: nobody was removed."]
    assert members_of(space.id) == {"owner-1", *joiners}
