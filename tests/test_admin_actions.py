"""The admin's writes: the row button, the confirmation, the bulk actions; permissions, CSRF, failures.

Each effect is checked in DynamoDB itself and against the whole-table invariants.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry

from invites import joining
from invites import services as engine
from invites.models import DynamoSpace
from invites.services import space_create
from spaces.exceptions import DynamoUnavailable, InvalidInviteCode
from spaces.models import Space
from tests.admin_pages import client_for, message_texts, parse, url
from tests.invariants import invariant_violations, resolves_to, stored_code
from tests.legacy import put_legacy_space

pytestmark = pytest.mark.django_db


# --- the row button --------------------------------------------------------------------------


def test_every_row_button_submits_its_own_form_for_its_own_space(dynamo_table: object, admin_users) -> None:
    ids = [space_create(owner_id="o", name=f"S{n}").id for n in range(3)] + [put_legacy_space(name="Bare")]

    page = parse(client_for(admin_users["changer"]).get(url("changelist")))

    buttons = page.row_buttons
    assert sorted(row for _form, row in buttons) == sorted(ids)
    changelist_form = page.form("changelist-form")
    for form_id, row_space_id in buttons:
        assert form_id is not None and form_id != changelist_form.id
        own_form = page.form(form_id)
        assert own_form.method == "post"
        assert own_form.action == url("regenerate", row_space_id)
        assert own_form.inputs["expected_code"] == (stored_code(row_space_id) or "")
        assert own_form.inputs["csrfmiddlewaretoken"]


def test_a_space_without_a_code_gets_one_at_once(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="My Workspace")
    client = client_for(admin_users["changer"])

    response = client.post(url("regenerate", space_id), {"expected_code": "", "next": url("changelist")})

    assert response.status_code == 302 and response["Location"] == url("changelist")
    new_code = stored_code(space_id)
    assert new_code and resolves_to(new_code) == space_id
    (text,) = message_texts(client.get(url("changelist")))
    assert text == f"The invite code of space “My Workspace” ({space_id}) is now {new_code} (it had none)."
    assert invariant_violations(require_codes=True) == []


def test_the_list_shows_the_new_code_after_the_button(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"])

    followed = client.post(url("regenerate", space_id), {"expected_code": ""}, follow=True)

    assert str(stored_code(space_id)) in followed.content.decode()
    assert 'class="invite-code-missing"' not in followed.content.decode()


def test_a_space_with_a_code_asks_for_confirmation_first_and_changes_nothing(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")

    response = client_for(admin_users["changer"]).post(
        url("regenerate", space.id), {"expected_code": space.invite_code}
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "The old invite link will stop working" in content and space.invite_code in content
    confirm_form = next(form for form in parse(response).forms if form.inputs.get("confirm") == "yes")
    assert confirm_form.action == url("regenerate", space.id)
    assert confirm_form.inputs["expected_code"] == space.invite_code
    assert stored_code(space.id) == space.invite_code
    assert LogEntry.objects.count() == 0


def test_confirming_replaces_the_code_and_kills_the_old_one(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    client = client_for(admin_users["changer"])

    response = client.post(
        url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes", "next": url("changelist")}
    )

    assert response.status_code == 302
    new_code = stored_code(space.id)
    assert new_code != space.invite_code
    assert resolves_to(space.invite_code) is None and resolves_to(new_code) == space.id
    assert message_texts(client.get(url("changelist"))) == [
        f"The invite code of space “Club” ({space.id}) is now {new_code} (was {space.invite_code})."
    ]
    assert invariant_violations(require_codes=True) == []


def test_a_code_changed_since_the_page_was_shown_asks_again(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    newer = engine.invite_code_regenerate(space_id=space.id).new_code

    response = client_for(admin_users["changer"]).post(
        url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes"}
    )

    assert response.status_code == 200
    assert "changed since the page you came from was shown" in response.content.decode()
    assert stored_code(space.id) == newer


def test_a_space_that_got_a_code_after_the_list_was_shown_is_not_overwritten_silently(
    dynamo_table: object, admin_users
) -> None:
    space_id = put_legacy_space(name="Racy")
    given_meanwhile = engine.invite_code_regenerate(space_id=space_id).new_code

    response = client_for(admin_users["changer"]).post(url("regenerate", space_id), {"expected_code": ""})

    assert response.status_code == 200
    assert "The old invite link will stop working" in response.content.decode()
    assert stored_code(space_id) == given_meanwhile


def test_the_confirmed_regeneration_reads_the_space_once_and_writes_one_transaction(
    dynamo_table: object, admin_users, dynamo_calls
) -> None:
    space = space_create(owner_id="o", name="Club")
    client = client_for(admin_users["changer"])
    dynamo_calls.reset()

    client.post(url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes"})

    assert dict(dynamo_calls.calls) == {"GetItem": 1, "TransactWriteItems": 1}


def test_each_regeneration_is_written_to_the_admin_log(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Logged")
    changer = admin_users["changer"]

    client_for(changer).post(url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes"})

    entry = LogEntry.objects.get()
    assert entry.user == changer
    assert entry.action_flag == CHANGE
    assert entry.content_type.model_class() is DynamoSpace  # type: ignore[attr-defined]  # django-stubs: not a ContentType
    assert entry.object_id == space.id and entry.object_repr == "Logged"
    assert entry.get_change_message() == f"Changed invite code from {space.invite_code} to {stored_code(space.id)}."


def test_the_regenerate_address_refuses_get(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")

    response = client_for(admin_users["changer"]).get(url("regenerate", space.id))

    assert response.status_code == 405
    assert stored_code(space.id) == space.invite_code


def test_regenerating_a_missing_space_is_an_error_message(dynamo_table: object, admin_users) -> None:
    client = client_for(admin_users["changer"])

    response = client.post(url("regenerate", "no-such-space"), {"expected_code": ""})

    assert response.status_code == 302
    assert message_texts(client.get(url("changelist"))) == ["Space no-such-space not found"]


def test_an_outside_next_address_is_ignored(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="Bare")

    response = client_for(admin_users["changer"]).post(
        url("regenerate", space_id), {"expected_code": "", "next": "https://evil.example/"}
    )

    assert response["Location"] == url("changelist")


# --- permissions and CSRF ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["viewer", "plain"])
def test_staff_without_the_change_permission_cannot_post(dynamo_table: object, admin_users, who: str) -> None:
    space_id = put_legacy_space(name="Bare")
    client = client_for(admin_users[who])

    single = client.post(url("regenerate", space_id), {"expected_code": ""})
    bulk = client.post(url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": [space_id]})
    backfill = client.post(url("backfill"))
    audit = client.post(url("audit"))

    assert [single.status_code, bulk.status_code, backfill.status_code, audit.status_code] == [403] * 4
    assert stored_code(space_id) is None
    assert LogEntry.objects.count() == 0


def test_superusers_may_regenerate(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="Bare")

    client_for(admin_users["superuser"]).post(url("regenerate", space_id), {"expected_code": ""})

    assert stored_code(space_id) is not None


def test_a_post_without_the_csrf_token_is_refused(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"], enforce_csrf_checks=True)

    single = client.post(url("regenerate", space_id), {"expected_code": ""})
    bulk = client.post(url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": [space_id]})
    backfill = client.post(url("backfill"))

    assert [single.status_code, bulk.status_code, backfill.status_code] == [403] * 3
    assert stored_code(space_id) is None


def test_a_post_with_the_token_from_the_page_is_accepted(dynamo_table: object, admin_users) -> None:
    space_id = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"], enforce_csrf_checks=True)
    page = parse(client.get(url("changelist")))
    ((form_id, _row),) = page.row_buttons

    response = client.post(url("regenerate", space_id), page.form(form_id).inputs)

    assert response.status_code == 302
    assert stored_code(space_id) is not None


# --- bulk actions ----------------------------------------------------------------------------------


def test_add_codes_to_selected_spaces_never_touches_one_that_has_a_code(dynamo_table: object, admin_users) -> None:
    bare = [put_legacy_space(name=f"Bare {n}") for n in range(2)]
    coded = space_create(owner_id="o", name="Coded")
    client = client_for(admin_users["changer"])

    response = client.post(
        url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": [*bare, coded.id]}
    )

    assert response.status_code == 302
    assert all(stored_code(space_id) for space_id in bare)
    assert stored_code(coded.id) == coded.invite_code
    texts = message_texts(client.get(url("changelist")))
    assert texts[0].startswith("Added invite codes to 2 spaces: ")
    assert texts[1] == f"Left 1 space unchanged (“Coded” ({coded.id}): it already has an invite code)."
    assert set(LogEntry.objects.values_list("object_id", flat=True)) == set(bare)
    assert invariant_violations(require_codes=True) == []


def test_bulk_regenerate_asks_for_confirmation_listing_the_spaces(dynamo_table: object, admin_users) -> None:
    spaces = [space_create(owner_id="o", name=f"Club {n}") for n in range(2)]

    response = client_for(admin_users["changer"]).post(
        url("changelist"), {"action": "regenerate_invite_codes", "_selected_action": [s.id for s in spaces]}
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "will stop working" in content
    assert all(space.invite_code in content and space.id in content for space in spaces)
    assert [stored_code(space.id) for space in spaces] == [space.invite_code for space in spaces]


def test_confirmed_bulk_regenerate_changes_every_selected_space(dynamo_table: object, admin_users) -> None:
    spaces = [space_create(owner_id="o", name=f"Club {n}") for n in range(2)]
    bare = put_legacy_space(name="Bare")
    untouched = space_create(owner_id="o", name="Not selected")
    client = client_for(admin_users["changer"])
    selected = [*(s.id for s in spaces), bare]
    confirmation = client.post(url("changelist"), {"action": "regenerate_invite_codes", "_selected_action": selected})
    confirm_form = next(form for form in parse(confirmation).forms if form.inputs.get("post") == "yes")
    payload = {**confirm_form.inputs, "_selected_action": selected}

    response = client.post(url("changelist"), payload)

    assert response.status_code == 302
    assert all(stored_code(s.id) != s.invite_code for s in spaces)
    assert stored_code(bare) is not None
    assert stored_code(untouched.id) == untouched.invite_code
    assert message_texts(client.get(url("changelist")))[0].startswith("Regenerated the invite codes of 3 spaces: ")
    assert LogEntry.objects.count() == 3
    assert invariant_violations(require_codes=True) == []


def test_bulk_regenerate_leaves_alone_a_space_whose_code_changed_after_confirmation(
    dynamo_table: object, admin_users
) -> None:
    space = space_create(owner_id="o", name="Moving")
    newer = engine.invite_code_regenerate(space_id=space.id).new_code
    client = client_for(admin_users["changer"])

    client.post(
        url("changelist"),
        {
            "action": "regenerate_invite_codes",
            "post": "yes",
            "_selected_action": [space.id],
            f"expected_code.{space.id}": space.invite_code,
        },
    )

    assert stored_code(space.id) == newer
    texts = message_texts(client.get(url("changelist")))
    assert texts == [f"Left 1 space unchanged (“Moving” ({space.id}): its invite code changed after you confirmed)."]


def test_bulk_actions_name_the_spaces_that_do_not_exist(dynamo_table: object, admin_users) -> None:
    bare = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"])

    client.post(url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": [bare, "gone-space"]})

    texts = message_texts(client.get(url("changelist")))
    assert texts[0].startswith("Added invite codes to 1 space: ")
    assert texts[1] == "Failed for 1 space: gone-space (gone-space): Space gone-space not found."


def test_an_action_without_a_selection_changes_nothing(dynamo_table: object, admin_users) -> None:
    bare = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"])

    client.post(url("changelist"), {"action": "add_missing_invite_codes"})

    assert stored_code(bare) is None
    assert message_texts(client.get(url("changelist"))) == [
        "Items must be selected in order to perform actions on them. No items have been changed."
    ]


def test_the_bulk_action_returns_to_the_filtered_list(dynamo_table: object, admin_users) -> None:
    bare = put_legacy_space(name="Bare")

    response = client_for(admin_users["changer"]).post(
        url("changelist") + "?has_code=no", {"action": "add_missing_invite_codes", "_selected_action": [bare]}
    )

    assert response["Location"] == url("changelist") + "?has_code=no"


# --- DynamoDB failures ------------------------------------------------------------------------------


def test_an_unreachable_dynamodb_during_regenerate_is_a_message_not_a_500(
    dynamodb_unreachable: object, admin_users
) -> None:
    client = client_for(admin_users["changer"])

    response = client.post(url("regenerate", "some-space"), {"expected_code": ""})

    assert response.status_code == 302
    (text,) = message_texts(response)
    assert text.startswith("DynamoDB cannot be reached")


def test_an_unreachable_dynamodb_during_a_bulk_action_is_a_message_not_a_500(
    dynamodb_unreachable: object, admin_users
) -> None:
    client = client_for(admin_users["changer"])

    response = client.post(url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": ["a", "b"]})

    assert response.status_code == 302
    (text,) = message_texts(response)
    assert text.startswith("DynamoDB cannot be reached")


def test_a_failure_half_way_through_a_bulk_regenerate_names_what_was_not_done(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch
) -> None:
    spaces = [space_create(owner_id="o", name=f"Club {n}") for n in range(3)]
    real_regenerate = engine.invite_code_regenerate
    calls = []

    def regenerate_then_lose_the_connection(**kwargs):
        calls.append(kwargs["space_id"])
        if len(calls) == 2:
            raise DynamoUnavailable("connection dropped")
        return real_regenerate(**kwargs)

    monkeypatch.setattr("invites.admin.changelist.invite_code_regenerate", regenerate_then_lose_the_connection)
    client = client_for(admin_users["changer"])

    client.post(
        url("changelist"),
        {"action": "regenerate_invite_codes", "post": "yes", "_selected_action": [s.id for s in spaces]},
    )

    texts = message_texts(client.get(url("changelist")))
    assert texts[0].startswith("Regenerated the invite codes of 1 space: ")
    assert texts[1].startswith("Failed for 2 spaces: ")
    assert "connection dropped" in texts[1] and "not attempted: DynamoDB cannot be reached" in texts[1]
    assert LogEntry.objects.count() == 1
    assert invariant_violations(require_codes=True) == []


def test_a_long_selection_is_summed_up_not_listed_in_full(dynamo_table: object, admin_users) -> None:
    bare = [put_legacy_space(name=f"Bare {n:02}") for n in range(22)]
    client = client_for(admin_users["changer"])

    client.post(url("changelist"), {"action": "add_missing_invite_codes", "_selected_action": bare})

    (text,) = message_texts(client.get(url("changelist")))
    assert text.startswith("Added invite codes to 22 spaces: ")
    assert text.endswith(" and 2 more.")
    assert text.count("“Bare") == 20


# --- pausing and unpausing a code ----------------------------------------------------------------


def stored_space(space_id: str) -> Space:
    return Space.get(*Space.key(space_id), consistent_read=True)


def test_pausing_keeps_the_code_stops_joins_and_is_logged(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    client = client_for(admin_users["changer"])

    response = client.post(url("pause", space.id), {"paused": "yes"})

    assert response.status_code == 302 and response["Location"] == url("change", space.id)
    stored = stored_space(space.id)
    assert (stored.invite_code, stored.invite_paused) == (space.invite_code, True)
    with pytest.raises(InvalidInviteCode):
        joining.space_join_with_code(typed_code=space.invite_code or "", user_id="newcomer")
    (text,) = message_texts(client.get(url("changelist")))
    assert text == (
        f"The invite code {space.invite_code} of space “Club” ({space.id}) is paused: nobody can join with it."
    )
    (entry,) = LogEntry.objects.all()
    assert (entry.user, entry.object_id, entry.action_flag) == (admin_users["changer"], space.id, CHANGE)
    assert entry.get_change_message() == f"Paused invite code {space.invite_code}."
    assert invariant_violations(require_codes=True) == []


def test_unpausing_lets_people_join_again(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    engine.invite_code_policy_update(space_id=space.id, paused=True)
    client = client_for(admin_users["changer"])

    client.post(url("pause", space.id), {"paused": "no"})

    assert stored_space(space.id).invite_paused is None
    assert joining.space_join_with_code(typed_code=space.invite_code or "", user_id="newcomer").id == space.id
    (text,) = message_texts(client.get(url("changelist")))
    assert text == f"The invite code {space.invite_code} of space “Club” ({space.id}) works again."
    assert LogEntry.objects.get().get_change_message() == f"Unpaused invite code {space.invite_code}."


def test_unpausing_a_used_up_code_says_it_still_does_not_work(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    engine.invite_code_policy_update(space_id=space.id, paused=True, max_uses=0)
    client = client_for(admin_users["changer"])

    client.post(url("pause", space.id), {"paused": "no"})

    (text,) = message_texts(client.get(url("changelist")))
    assert text.endswith("is no longer paused, but still used up.")
    assert stored_space(space.id).invite_max_uses == 0  # the rest of the policy is kept


def test_pausing_a_space_without_a_code_changes_nothing_and_says_so(dynamo_table: object, admin_users) -> None:
    bare = put_legacy_space(name="Bare")
    client = client_for(admin_users["changer"])

    response = client.post(url("pause", bare), {"paused": "yes"})

    assert response["Location"] == url("change", bare)
    assert stored_space(bare).invite_paused is None
    assert message_texts(client.get(url("changelist"))) == [
        f"Space {bare} has no invite code to pause or unpause; give it one first."
    ]
    assert LogEntry.objects.count() == 0


@pytest.mark.parametrize("posted", [{}, {"paused": "maybe"}])
def test_a_pause_request_that_says_neither_changes_nothing(dynamo_table: object, admin_users, posted) -> None:
    space = space_create(owner_id="o", name="Club")

    response = client_for(admin_users["changer"]).post(url("pause", space.id), posted)

    assert response.status_code == 302
    assert stored_space(space.id).invite_paused is None


def test_pausing_a_missing_space_goes_back_to_the_list(dynamo_table: object, admin_users) -> None:
    response = client_for(admin_users["changer"]).post(url("pause", "no-such-space"), {"paused": "yes"})

    assert response["Location"] == url("changelist")


@pytest.mark.parametrize("who", ["viewer", "plain"])
def test_only_changers_may_pause(dynamo_table: object, admin_users, who: str) -> None:
    space = space_create(owner_id="o", name="Club")

    response = client_for(admin_users[who]).post(url("pause", space.id), {"paused": "yes"})

    assert response.status_code == 403
    assert stored_space(space.id).invite_paused is None


def test_pausing_is_a_post_with_the_csrf_token(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")
    client = client_for(admin_users["changer"], enforce_csrf_checks=True)

    by_get = client.get(url("pause", space.id), {"paused": "yes"})
    without_token = client.post(url("pause", space.id), {"paused": "yes"})
    page = parse(client.get(url("change", space.id)))
    (form,) = [form for form in page.forms if form.action == url("pause", space.id)]
    with_token = client.post(url("pause", space.id), form.inputs)

    assert [by_get.status_code, without_token.status_code, with_token.status_code] == [405, 403, 302]
    assert stored_space(space.id).invite_paused is True


def test_an_unreachable_dynamodb_on_pause_is_a_message(dynamodb_unreachable: object, admin_users) -> None:
    client = client_for(admin_users["changer"])

    response = client.post(url("pause", "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b"), {"paused": "yes"})

    assert response.status_code == 302
    assert message_texts(client.get(url("audit")))[0].startswith("DynamoDB cannot be reached")
