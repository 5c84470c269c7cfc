"""The admin's read pages: the index entry, the space list (filter, search, cursor paging), the detail page.

Also who may see them, and what a DynamoDB failure looks like there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry

from invites import assignment, joining, selectors
from invites import services as engine
from invites.admin import SpaceAdmin
from invites.services import space_create
from spaces.models import InviteMapping, Space
from tests.admin_pages import client_for, message_texts, parse, url
from tests.legacy import put_legacy_membership, put_legacy_space

pytestmark = pytest.mark.django_db


# --- the index and who sees what ---------------------------------------------------------------


def test_the_admin_index_lists_spaces_under_invites(dynamo_table: object, admin_users) -> None:
    response = client_for(admin_users["superuser"]).get("/admin/")

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="invites-dynamospace"' in content
    assert f'href="{url("changelist")}"' in content
    assert ">Invites<" in content and ">Spaces<" in content


@pytest.mark.parametrize("who", ["superuser", "changer", "viewer"])
def test_staff_with_a_space_permission_see_the_entry_and_the_list(dynamo_table: object, admin_users, who) -> None:
    client = client_for(admin_users[who])

    assert f'href="{url("changelist")}"' in client.get("/admin/").content.decode()
    assert client.get(url("changelist")).status_code == 200


def test_staff_without_a_space_permission_neither_see_nor_open_the_pages(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Hidden")
    client = client_for(admin_users["plain"])

    assert url("changelist") not in client.get("/admin/").content.decode()
    for page in (url("changelist"), url("change", space.id), url("backfill"), url("audit")):
        assert client.get(page).status_code == 403, page


def test_anonymous_visitors_are_sent_to_the_login_page(dynamo_table: object, client) -> None:
    response = client.get(url("changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_viewers_get_a_read_only_list_without_buttons_or_actions(dynamo_table: object, admin_users) -> None:
    space_create(owner_id="o", name="Read only")

    response = client_for(admin_users["viewer"]).get(url("changelist"))

    page = parse(response)
    assert page.row_buttons == []
    assert 'name="action"' not in response.content.decode()
    assert "_selected_action" not in response.content.decode()


def test_changers_get_a_regenerate_button_on_every_row_and_the_bulk_actions(dynamo_table: object, admin_users) -> None:
    ids = {space_create(owner_id="o", name=f"Space {n}").id for n in range(2)} | {put_legacy_space(name="Bare")}

    response = client_for(admin_users["changer"]).get(url("changelist"))

    page = parse(response)
    assert set(page.row_ids) == ids
    assert len(page.row_buttons) == 3
    content = response.content.decode()
    assert "Add invite codes to selected spaces that have none" in content
    assert "Regenerate invite codes for selected spaces" in content


# --- the list ---------------------------------------------------------------------------


def test_the_list_shows_name_id_owner_code_and_a_missing_marker(dynamo_table: object, admin_users) -> None:
    owner = admin_users["viewer"]
    coded = space_create(owner_id=str(owner.pk), name="Garden Club")
    bare_id = put_legacy_space(name="My Workspace", owner_id="legacy-owner")

    response = client_for(admin_users["viewer"]).get(url("changelist"))

    content = response.content.decode()
    assert "Garden Club" in content and coded.id in content and coded.invite_code in content
    assert ">viewer<" in content  # the owner's username, not the raw user id
    assert "My Workspace" in content and bare_id in content and ">legacy-owner<" in content
    assert content.count('class="invite-code-missing">missing<') == 1


@pytest.mark.parametrize(("has_code", "expected"), [("no", {"bare"}), ("yes", {"coded"}), ("", {"bare", "coded"})])
def test_the_has_invite_code_filter(dynamo_table: object, admin_users, has_code: str, expected: set[str]) -> None:
    spaces = {"coded": space_create(owner_id="o", name="Coded").id, "bare": put_legacy_space(name="Bare")}

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"has_code": has_code})

    assert set(parse(response).row_ids) == {spaces[name] for name in expected}


def test_cursor_paging_walks_every_space_once_and_back(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SpaceAdmin, "list_per_page", 2)
    all_ids = {space_create(owner_id="o", name=f"S{n}").id for n in range(5)}
    client = client_for(admin_users["viewer"])

    pages: list[list[str]] = []
    addresses: list[str] = []
    address = url("changelist")
    for _ in range(10):  # three pages are expected: a walk that does not end is a failure, not a hang
        response = client.get(address)
        pages.append(parse(response).row_ids)
        addresses.append(address)
        next_link = response.context["next_url"]
        if not next_link:
            break
        address = url("changelist") + next_link
    else:
        pytest.fail(f"the walk did not end after {len(pages)} pages")

    assert [len(rows) for rows in pages] == [2, 2, 1]
    assert {space_id for rows in pages for space_id in rows} == all_ids
    last = client.get(addresses[-1])
    back_one = client.get(url("changelist") + last.context["previous_url"])
    assert parse(back_one).row_ids == pages[1]
    back_two = client.get(url("changelist") + back_one.context["previous_url"])
    assert parse(back_two).row_ids == pages[0]
    assert back_two.context["previous_url"] is None


def test_a_page_whose_scan_budget_runs_out_is_short_and_the_walk_still_sees_every_space_once(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SpaceAdmin, "list_per_page", 3)
    monkeypatch.setattr(selectors, "SCAN_ITEMS_PER_REQUEST", 2)
    monkeypatch.setattr(selectors, "MAX_SCAN_REQUESTS_PER_PAGE", 2)
    # Each space brings a membership, a mapping and a claim: most scanned items are not spaces.
    all_ids = {space_create(owner_id="o", name=f"S{n}").id for n in range(4)}
    client = client_for(admin_users["viewer"])

    seen: list[str] = []
    short_pages = 0
    address = url("changelist")
    for _ in range(50):
        response = client.get(address)
        seen += parse(response).row_ids
        short_pages += "short-page-note" in response.content.decode()
        if not response.context["next_url"]:
            break
        address = url("changelist") + response.context["next_url"]
    else:
        pytest.fail("the walk did not end after 50 pages")

    assert sorted(seen) == sorted(all_ids)
    assert short_pages > 0


def test_a_page_reads_only_its_own_rows(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch, dynamo_calls
) -> None:
    monkeypatch.setattr(SpaceAdmin, "list_per_page", 2)
    for n in range(6):
        space_create(owner_id="o", name=f"S{n}")
    client = client_for(admin_users["viewer"])
    dynamo_calls.reset()

    response = client.get(url("changelist"))

    assert len(parse(response).row_ids) == 2
    # One Scan request with a small Limit; no Query per row, no full-table read.
    assert dict(dynamo_calls.calls) == {"Scan": 1}


def test_the_paging_filter_survives_next_and_previous(
    dynamo_table: object, admin_users, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SpaceAdmin, "list_per_page", 1)
    bare = {put_legacy_space(name=f"Bare {n}") for n in range(2)}
    space_create(owner_id="o", name="Coded")
    client = client_for(admin_users["viewer"])

    first = client.get(url("changelist"), {"has_code": "no"})
    second = client.get(url("changelist") + first.context["next_url"])

    assert "has_code=no" in first.context["next_url"]
    assert set(parse(first).row_ids) | set(parse(second).row_ids) == bare


def test_a_forged_cursor_is_refused_with_a_message(dynamo_table: object, admin_users) -> None:
    space_create(owner_id="o", name="Only")

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"after": "not a valid id!"})

    assert response.status_code == 200
    assert "That page cursor is not valid; showing the first page." in message_texts(response)
    assert len(parse(response).row_ids) == 1


# --- search -------------------------------------------------------------------------------


def test_search_by_exact_space_id(dynamo_table: object, admin_users) -> None:
    wanted = space_create(owner_id="o", name="Wanted")
    space_create(owner_id="o", name="Other")

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"q": wanted.id})

    assert parse(response).row_ids == [wanted.id]


@pytest.mark.parametrize("transform", [str, str.lower, lambda code: f"  {code} "])
def test_search_by_invite_code(dynamo_table: object, admin_users, transform) -> None:
    wanted = space_create(owner_id="o", name="Wanted")
    space_create(owner_id="o", name="Other")

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"q": transform(wanted.invite_code)})

    assert parse(response).row_ids == [wanted.id]


def test_search_by_a_legacy_code_resolves_through_the_invite_mapping(legacy_table: object, admin_users) -> None:
    legacy_id = put_legacy_space(name="Chess Night", invite_code="a3f9c2d4")

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"q": "a3f9c2d4"})

    assert parse(response).row_ids == [legacy_id]


def test_search_by_a_replaced_code_says_which_space_held_it(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Moved on")
    engine.invite_code_regenerate(space_id=space.id)

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"q": space.invite_code})

    assert parse(response).row_ids == []
    assert f"was issued to space {space.id}" in response.content.decode()


def test_search_for_nothing_known_shows_no_rows_and_says_so(dynamo_table: object, admin_users) -> None:
    space_create(owner_id="o", name="Some")

    response = client_for(admin_users["viewer"]).get(url("changelist"), {"q": "NOPE2345"})

    assert parse(response).row_ids == []
    assert "No space has the id or the invite code" in response.content.decode()


# --- the detail page -----------------------------------------------------------------------


def test_detail_shows_fields_members_with_roles_and_a_consistent_code(dynamo_table: object, admin_users) -> None:
    owner = admin_users["changer"]
    space = space_create(owner_id=str(owner.pk), name="Garden Club", description="Seeds")
    joining.space_join_with_code(typed_code=space.invite_code, user_id="guest-1")
    put_legacy_membership(space_id=space.id, user_id="helper-9", role="admin")

    response = client_for(admin_users["viewer"]).get(url("change", space.id))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Garden Club" in content and "Seeds" in content and space.invite_code in content
    roles = {row["membership"].user_id: row["membership"].role for row in response.context["members"]}
    assert roles == {str(owner.pk): "owner", "guest-1": "member", "helper-9": "admin"}
    assert "consistent: the INVITE# mapping is in place" in content


def test_detail_names_a_missing_invite_mapping(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Broken")
    InviteMapping(*InviteMapping.key(space.invite_code, space.id)).delete()

    response = client_for(admin_users["viewer"]).get(url("change", space.id))

    assert f"the INVITE#{space.invite_code} mapping of this space is missing" in response.content.decode()


def test_detail_names_a_code_claimed_by_another_space(dynamo_table: object, admin_users) -> None:
    first = put_legacy_space(invite_code="dupe2345")
    second = put_legacy_space(invite_code="DUPE2345")
    assignment.invite_codes_record_existing(spaces=[Space.get(*Space.key(first))])

    response = client_for(admin_users["viewer"]).get(url("change", second))

    assert f"claimed by another space, {first}" in response.content.decode()


def test_detail_of_a_missing_space_is_a_404_page_with_a_message(dynamo_table: object, admin_users) -> None:
    response = client_for(admin_users["viewer"]).get(url("change", "no-such-space"))

    assert response.status_code == 404
    assert "Space no-such-space not found" in message_texts(response)


def test_detail_lists_the_admin_history_of_the_code(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Tracked")
    client = client_for(admin_users["changer"])
    client.post(url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes"})

    response = client.get(url("change", space.id))

    (entry,) = response.context["history"]
    assert entry.user == admin_users["changer"]
    assert f"Changed invite code from {space.invite_code} to " in response.content.decode()


def test_recent_actions_on_the_index_link_to_the_space(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Recently changed")
    client = client_for(admin_users["superuser"])
    client.post(url("regenerate", space.id), {"expected_code": space.invite_code, "confirm": "yes"})

    content = client.get("/admin/").content.decode()

    assert LogEntry.objects.get().get_admin_url() == url("change", space.id)
    assert f'href="{url("change", space.id)}"' in content and "Recently changed" in content


# --- DynamoDB failures ------------------------------------------------------------------------


def test_an_unreachable_dynamodb_is_an_error_message_on_the_list_not_a_500(
    dynamodb_unreachable: object, admin_users
) -> None:
    response = client_for(admin_users["viewer"]).get(url("changelist"))

    assert response.status_code == 200
    (text,) = message_texts(response)
    assert text.startswith("DynamoDB cannot be reached")


def test_an_unreachable_dynamodb_is_an_error_message_on_search_and_detail(
    dynamodb_unreachable: object, admin_users
) -> None:
    client = client_for(admin_users["viewer"])

    searched = client.get(url("changelist"), {"q": "ABCD2345"})
    detail = client.get(url("change", "some-space"))

    assert searched.status_code == 200 and message_texts(searched)[0].startswith("DynamoDB cannot be reached")
    assert detail.status_code == 200 and message_texts(detail)[0].startswith("DynamoDB cannot be reached")


# --- the site, and how values are shown -----------------------------------------------------------


def test_the_site_has_the_projects_name_in_its_header_and_title(dynamo_table: object, admin_users) -> None:
    content = client_for(admin_users["viewer"]).get(url("changelist")).content.decode()

    assert '<div id="site-name"><a href="/admin/">Lifestyle Spaces administration</a></div>' in content
    assert "| Lifestyle Spaces admin</title>" in content
    assert "Django administration" not in content


def test_view_site_leads_to_the_home_page(dynamo_table: object, admin_users) -> None:
    client = client_for(admin_users["viewer"])

    content = client.get("/admin/").content.decode()

    assert '<a href="/">View site</a>' in content
    assert client.get("/").status_code == 200


def test_the_list_shows_dates_as_the_admin_does_with_the_stored_value_as_tooltip(
    dynamo_table: object, admin_users
) -> None:
    put_legacy_space(name="Old")  # created_at 2024-01-15T10:30:00, as the earlier system wrote it

    content = client_for(admin_users["viewer"]).get(url("changelist")).content.decode()

    assert (
        '<td class="field-created"><time datetime="2024-01-15T10:30:00+00:00" title="2024-01-15T10:30:00">'
        '<span class="nowrap">Jan. 15, 2024,</span> <span class="nowrap">10:30 a.m.</span></time></td>'
    ) in content


def test_a_timestamp_that_is_not_iso_is_shown_as_stored() -> None:
    from invites.admin.common import when

    assert when("last tuesday <b>") == "last tuesday &lt;b&gt;"
    assert when(None) == ""


def test_the_row_button_adds_a_first_code_or_regenerates(dynamo_table: object, admin_users) -> None:
    coded = space_create(owner_id="o", name="Coded")
    bare = put_legacy_space(name="Bare")

    page = parse(client_for(admin_users["changer"]).get(url("changelist")))

    assert page.row_button_texts == {coded.id: "Regenerate", bare: "Add code"}


def test_the_list_shows_a_compact_policy_under_a_limited_code(dynamo_table: object, admin_users) -> None:
    plain = space_create(owner_id="o", name="Plain")
    limited = space_create(owner_id="o", name="Limited")
    engine.invite_code_policy_update(space_id=limited.id, paused=True, max_uses=10)

    content = client_for(admin_users["viewer"]).get(url("changelist")).content.decode()

    assert (
        '<div class="invite-policy"><div><span class="invite-stopped">paused</span></div><div>0 of 10 uses</div></div>'
    ) in content
    assert content.count('class="invite-policy"') == 1  # the guide's code (no policy) has no note
    assert plain.invite_code in content


def test_the_policy_note_says_why_a_code_stopped_working_as_the_engine_decides() -> None:
    from invites.admin.common import policy_shown
    from invites.policies import code_works

    now = 1_800_000_000
    cases = [
        Space(),
        Space(invite_paused=True),
        Space(invite_expires_at=now - 1),
        Space(invite_expires_at=now + 60, invite_max_uses=3, invite_uses=3),
        Space(invite_max_uses=3, invite_uses=2),
    ]

    shown = [policy_shown(space, now)["stopped_by"] for space in cases]

    assert shown == [[], ["paused"], ["expired"], ["used up"], []]
    assert [not reasons for reasons in shown] == [code_works(space, now) for space in cases]


def test_detail_shows_workspace_for_a_space_without_a_type_as_the_api_does(dynamo_table: object, admin_users) -> None:
    untyped = space_create(owner_id="o", name="Untyped")  # the engine stores no type
    team = space_create(owner_id="o", name="Team", space_type="team")
    client = client_for(admin_users["viewer"])

    assert '<div class="readonly field-type">workspace</div>' in client.get(url("change", untyped.id)).content.decode()
    assert '<div class="readonly field-type">team</div>' in client.get(url("change", team.id)).content.decode()


def test_detail_shows_the_policy_of_the_code_and_its_uses(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Limited")
    engine.invite_code_policy_update(space_id=space.id, max_uses=2, expires_in=3600)
    joining.space_join_with_code(typed_code=space.invite_code or "", user_id="newcomer")

    page = client_for(admin_users["viewer"]).get(url("change", space.id))

    expires_at = Space.get(*Space.key(space.id)).invite_expires_at
    content = page.content.decode()
    assert '<div class="readonly field-works">\n      yes\n    </div>' in content
    assert f'<time datetime="{datetime.fromtimestamp(expires_at, UTC).isoformat()}"' in content
    assert '<div class="readonly field-max-uses">2</div>' in content
    assert '<div class="readonly field-uses">1\n' in content
    assert '<div class="readonly field-paused">no</div>' in content


def test_detail_of_a_code_without_a_policy_says_never_and_no_limit(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Plain")

    content = client_for(admin_users["viewer"]).get(url("change", space.id)).content.decode()

    assert "never" in content.split('field-expires-at">')[1].split("</div>")[0]
    assert '<div class="readonly field-max-uses">no limit</div>' in content


def test_detail_offers_pause_to_changers_and_nothing_to_viewers(dynamo_table: object, admin_users) -> None:
    space = space_create(owner_id="o", name="Club")

    changer = parse(client_for(admin_users["changer"]).get(url("change", space.id)))
    viewer = client_for(admin_users["viewer"]).get(url("change", space.id)).content.decode()

    (pause_form,) = [form for form in changer.forms if form.action == url("pause", space.id)]
    assert pause_form.method == "post" and pause_form.inputs["paused"] == "yes"
    assert pause_form.inputs["csrfmiddlewaretoken"]
    assert url("pause", space.id) not in viewer


def test_detail_of_a_space_without_a_code_offers_to_add_one_and_no_pause(dynamo_table: object, admin_users) -> None:
    bare = put_legacy_space(name="Bare")

    page = parse(client_for(admin_users["changer"]).get(url("change", bare)))

    ours = [form.action for form in page.forms if (form.action or "").startswith(url("changelist"))]
    assert ours == [url("regenerate", bare)]
    assert 'value="Add an invite code"' in client_for(admin_users["changer"]).get(url("change", bare)).content.decode()
