"""The join page (issue 15), server side: preview, joining, one not-found page, throttle, outage, sign-in."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from invites import joining, policies
from invites.joining import space_join_with_code
from invites.services import invite_code_policy_update, invite_code_regenerate, space_create
from spaces.models import ROLE_MEMBER
from spaces.selectors import space_with_membership
from tests.api_support import add_member, as_user, current_code, new_user_id
from tests.legacy import put_legacy_space
from web.apps import invite_links_reach_the_join_page

pytestmark = pytest.mark.django_db

PASSWORD = "join-page-pass-123"
NOT_FOUND_TITLE = "This invite link does not work"


@pytest.fixture
def visitor(dynamo_table) -> object:  # signing in reserves an attempt in the security table
    return get_user_model().objects.create_user("visitor", password=PASSWORD)


@pytest.fixture
def garden(dynamo_table) -> object:
    return space_create(owner_id=new_user_id(), name="Garden Club", description="Tomatoes & friends")


def signed_in(client: Client, user) -> Client:
    client.force_login(user)
    return client


def html(response) -> str:
    return response.content.decode()


def membership_of(space_id: str, user):
    return space_with_membership(space_id=space_id, user_id=str(user.pk))[1]


def join_form_token(client: Client, path: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html(client.get(path)))
    assert match
    return match.group(1)


# --- the preview ------------------------------------------------------------------------------------


def test_a_signed_out_visitor_sees_the_preview_and_a_sign_in_link(client, garden) -> None:
    response = client.get(f"/join/{garden.invite_code}")

    page = html(response)
    assert response.status_code == 200
    assert "<h1>Garden Club</h1>" in page
    assert "Tomatoes &amp; friends" in page
    assert "1 member<" in page
    assert f'href="/accounts/login/?next=/join/{garden.invite_code}">Sign in to join</a>' in page
    assert 'method="post"' not in page


def test_a_signed_in_visitor_sees_the_preview_and_the_join_button(client, garden, visitor) -> None:
    response = signed_in(client, visitor).get(f"/join/{garden.invite_code}")

    page = html(response)
    assert response.status_code == 200
    assert "<h1>Garden Club</h1>" in page and "1 member<" in page
    assert f'<form method="post" action="/join/{garden.invite_code}">' in page
    assert "Join Garden Club</button>" in page
    assert "Sign in to join" not in page
    assert "Signed in as <strong>visitor</strong>" in page


def test_opening_the_page_joins_nobody(client, garden, visitor) -> None:
    signed_in(client, visitor)

    for _ in range(3):
        client.get(f"/join/{garden.invite_code}")

    space, membership = space_with_membership(space_id=garden.id, user_id=str(visitor.pk))
    assert membership is None
    assert space.member_count == 1


def test_the_page_is_never_cached(client, garden) -> None:
    response = client.get(f"/join/{garden.invite_code}")

    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


# --- joining ------------------------------------------------------------------------------------------


def test_posting_joins_and_says_so(client, garden, visitor) -> None:
    response = signed_in(client, visitor).post(f"/join/{garden.invite_code}")

    page = html(response)
    assert response.status_code == 200
    assert "You are now a member of Garden Club." in page
    assert "2 members<" in page
    assert "Join Garden Club</button>" not in page
    assert membership_of(garden.id, visitor).role == ROLE_MEMBER


def test_joining_needs_the_csrf_token(garden, visitor) -> None:
    client = signed_in(Client(enforce_csrf_checks=True), visitor)
    path = f"/join/{garden.invite_code}"

    refused = client.post(path)
    assert refused.status_code == 403
    assert membership_of(garden.id, visitor) is None

    accepted = client.post(path, {"csrfmiddlewaretoken": join_form_token(client, path)})
    assert accepted.status_code == 200
    assert "You are now a member of Garden Club." in html(accepted)
    assert membership_of(garden.id, visitor) is not None


def test_a_signed_out_post_leads_to_sign_in_and_joins_nobody(client, garden) -> None:
    response = client.post(f"/join/{garden.invite_code}")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/join/{garden.invite_code}"
    assert space_with_membership(space_id=garden.id, user_id=None)[0].member_count == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_member_is_told_so_without_an_error(client, garden, visitor, method) -> None:
    add_member(garden.id, str(visitor.pk), ROLE_MEMBER)

    response = getattr(signed_in(client, visitor), method)(f"/join/{garden.invite_code}")

    page = html(response)
    assert response.status_code == 200
    assert "You are already a member of Garden Club." in page
    assert "2 members<" in page
    assert "Join Garden Club</button>" not in page


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_owner_is_told_they_are_a_member(client, dynamo_table, visitor, method) -> None:
    space = space_create(owner_id=str(visitor.pk), name="Mine")

    response = getattr(signed_in(client, visitor), method)(f"/join/{space.invite_code}")

    assert response.status_code == 200
    assert "You are already a member of Mine." in html(response)
    assert membership_of(space.id, visitor).role == "owner"  # never demoted


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_owner_of_a_legacy_space_without_a_membership_item_is_a_member(
    client, dynamo_table, visitor, method
) -> None:
    put_legacy_space(name="Old club", owner_id=str(visitor.pk), invite_code="a3f9c2d4", with_owner_membership=False)

    response = getattr(signed_in(client, visitor), method)("/join/a3f9c2d4")

    assert response.status_code == 200
    assert "You are already a member of Old club." in html(response)


# --- codes that open nothing ------------------------------------------------------------------------


def codes_that_open_nothing(monkeypatch) -> dict[str, str]:
    """One code of each kind that opens nothing; the expired one only once the clock is moved on."""
    owner = new_user_id()
    replaced = space_create(owner_id=owner, name="Replaced")
    invite_code_regenerate(space_id=replaced.id)
    expired = space_create(owner_id=owner, name="Expired")
    invite_code_policy_update(space_id=expired.id, expires_in=60)
    used_up = space_create(owner_id=owner, name="Used up")
    invite_code_policy_update(space_id=used_up.id, max_uses=1)
    space_join_with_code(typed_code=used_up.invite_code, user_id=new_user_id())
    paused = space_create(owner_id=owner, name="Paused")
    invite_code_policy_update(space_id=paused.id, paused=True)
    later = policies.now_epoch() + 120
    monkeypatch.setattr(policies, "now_epoch", lambda: later)
    monkeypatch.setattr(joining, "now_epoch", lambda: later)
    return {
        "unknown": "ZZZZ2222",
        "malformed": "not%20a%20code!",
        "replaced": replaced.invite_code,
        "expired": expired.invite_code,
        "used up": used_up.invite_code,
        "paused": paused.invite_code,
    }


def test_every_code_that_opens_nothing_gets_the_same_404_page(
    client, dynamo_table, visitor, monkeypatch, settings
) -> None:
    settings.THROTTLE_JOIN_PAGE = "100/min"  # 18 requests from one address
    dead = codes_that_open_nothing(monkeypatch)
    member = signed_in(Client(), visitor)

    answers = {
        (kind, who, method): getattr(browser, method)(f"/join/{code}")
        for kind, code in dead.items()
        for who, browser in (("signed out", client), ("signed in", member))
        for method in ("get", "post")
        if (who, method) != ("signed out", "post")  # that one is sent to sign in before anything is looked up
    }

    assert {key: response.status_code for key, response in answers.items()} == dict.fromkeys(answers, 404)
    bodies = {response.content for response in answers.values()}
    assert len(bodies) == 1
    assert NOT_FOUND_TITLE in bodies.pop().decode()


def test_the_not_found_page_names_no_space(client, dynamo_table, monkeypatch) -> None:
    dead = codes_that_open_nothing(monkeypatch)

    page = html(client.get(f"/join/{dead['replaced']}"))

    assert "Replaced" not in page


# --- what a code may look like ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["{code}", "{lower}", "%20{code}%20", "%20%20{lower}%20", "{code}/", "{lower}/"])
def test_codes_work_in_any_case_and_with_surrounding_spaces(client, garden, shape) -> None:
    path = "/join/" + shape.format(code=garden.invite_code, lower=garden.invite_code.lower())

    response = client.get(path)

    assert response.status_code == 200
    assert "<h1>Garden Club</h1>" in html(response)


def test_the_sign_in_link_names_the_code_without_its_spaces(client, garden) -> None:
    response = client.get(f"/join/%20{garden.invite_code.lower()}%20")

    assert f'href="/accounts/login/?next=/join/{garden.invite_code.lower()}"' in html(response)


def test_joining_with_a_lower_case_code_in_spaces_works(client, garden, visitor) -> None:
    response = signed_in(client, visitor).post(f"/join/%20{garden.invite_code.lower()}%20")

    assert "You are now a member of Garden Club." in html(response)
    assert membership_of(garden.id, visitor) is not None


# --- throttling -------------------------------------------------------------------------------------------


def test_the_page_is_throttled_per_client_address_with_retry_after(client, garden, settings) -> None:
    settings.THROTTLE_JOIN_PAGE = "3/min"
    answers = [client.get(f"/join/{code}").status_code for code in (garden.invite_code, "GUESS222", "GUESS333")]

    throttled = client.get(f"/join/{garden.invite_code}")
    elsewhere = client.get(f"/join/{garden.invite_code}", REMOTE_ADDR="192.0.2.7")

    assert answers == [200, 404, 404]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "Too many requests" in html(throttled)
    assert "Garden Club" not in html(throttled)
    assert elsewhere.status_code == 200


def test_joins_count_toward_the_same_limit(client, garden, visitor, settings) -> None:
    settings.THROTTLE_JOIN_PAGE = "2/min"
    signed_in(client, visitor)
    client.get(f"/join/{garden.invite_code}")
    client.post("/join/GUESS222")

    refused = client.post(f"/join/{garden.invite_code}")

    assert refused.status_code == 429
    assert membership_of(garden.id, visitor) is None


def test_a_throttled_request_reads_nothing_from_dynamodb(client, garden, settings, dynamo_calls) -> None:
    settings.THROTTLE_JOIN_PAGE = "1/min"
    client.get(f"/join/{garden.invite_code}")
    dynamo_calls.reset()

    assert client.get(f"/join/{garden.invite_code}").status_code == 429
    assert dynamo_calls.total == 0


def test_the_default_limit_stops_a_guesser_within_a_minute(client, dynamo_table) -> None:
    statuses = [client.get(f"/join/GUESS{n:03d}").status_code for n in range(12)]

    assert statuses[:10] == [404] * 10
    assert statuses[10:] == [429, 429]


# --- DynamoDB unavailable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_dynamodb_unreachable_is_a_friendly_503(client, visitor, dynamodb_unreachable, method) -> None:
    response = getattr(signed_in(client, visitor), method)("/join/K7MPQ2XR")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Invites are temporarily unavailable" in html(response)


def test_logs_never_carry_the_code(client, garden, visitor, caplog) -> None:
    signed_in(client, visitor)
    with caplog.at_level(logging.DEBUG):
        client.get(f"/join/{garden.invite_code.lower()}")
        client.post(f"/join/{garden.invite_code.lower()}")
        client.get("/join/GUESS222")

    assert "joined space" in caplog.text and "join/(?P<code>" in caplog.text  # the engine's line, the route
    assert garden.invite_code.lower() not in caplog.text.lower()
    assert "guess222" not in caplog.text.lower()


# --- signing in and out ------------------------------------------------------------------------------------


def test_signing_in_brings_the_visitor_back_to_the_join_page(client, garden, visitor) -> None:
    join_page = f"/join/{garden.invite_code}"
    form = client.get(f"/accounts/login/?next={join_page}")
    assert form.status_code == 200
    assert f'name="next" value="{join_page}"' in html(form)
    assert '<label for="id_username">' in html(form) and '<label for="id_password">' in html(form)

    signed = client.post("/accounts/login/", {"username": "visitor", "password": PASSWORD, "next": join_page})

    assert signed.status_code == 302
    assert signed["Location"] == join_page
    assert "Join Garden Club</button>" in html(client.get(join_page))


def test_a_wrong_password_keeps_the_way_back(client, garden, visitor) -> None:
    join_page = f"/join/{garden.invite_code}"

    response = client.post("/accounts/login/", {"username": "visitor", "password": "wrong", "next": join_page})

    assert response.status_code == 200
    assert "Please enter a correct username and password." in html(response)
    assert f'name="next" value="{join_page}"' in html(response)
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "target", ["https://evil.example/join/K7MPQ2XR", "//evil.example/join/K7MPQ2XR", "http://testserver.evil.example/"]
)
def test_an_external_next_is_not_followed(client, visitor, target) -> None:
    response = client.post("/accounts/login/", {"username": "visitor", "password": PASSWORD, "next": target})

    assert response.status_code == 302
    assert response["Location"] == "/join/"
    assert "_auth_user_id" in client.session


def test_a_locked_out_visitor_gets_the_lockout_message(client, visitor, settings) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        client.post("/accounts/login/", {"username": "visitor", "password": "wrong", "next": "/join/K7MPQ2XR"})

    response = client.post("/accounts/login/", {"username": "visitor", "password": PASSWORD, "next": "/join/K7MPQ2XR"})

    assert response.status_code == 200
    assert re.search(r"Too many failed sign-in attempts\. Try again in \d+ minute\(s\)\.", html(response))
    assert 'role="alert"' in html(response)
    assert "_auth_user_id" not in client.session


def test_signing_out_goes_back_to_the_join_page(client, garden, visitor) -> None:
    join_page = f"/join/{garden.invite_code}"
    signed_in(client, visitor)

    response = client.post("/accounts/logout/", {"next": join_page})

    assert response.status_code == 302
    assert response["Location"] == join_page
    assert "Sign in to join" in html(client.get(join_page))


# --- the code form at /join/ -------------------------------------------------------------------------------


def test_the_code_form_leads_to_the_codes_page(client, garden) -> None:
    form = client.get("/join/")
    typed = client.get("/join/", {"code": f"  {garden.invite_code.lower()} "})

    assert form.status_code == 200 and '<label for="id_code">Invite code</label>' in html(form)
    assert typed.status_code == 302
    assert typed["Location"] == f"/join/{garden.invite_code.lower()}"


def test_the_code_form_asks_again_for_an_empty_code_and_refuses_a_malformed_one(client, dynamo_table) -> None:
    empty = client.get("/join/", {"code": "  "})
    malformed = client.get("/join/", {"code": "../admin/"})

    assert empty.status_code == 200 and "Enter the invite code you received." in html(empty)
    assert malformed.status_code == 404 and NOT_FOUND_TITLE in html(malformed)


# --- invite links lead here ------------------------------------------------------------------------------------


def test_the_default_invite_url_is_the_join_page(api_client, dynamo_table, client) -> None:
    owner = new_user_id()
    space = space_create(owner_id=owner, name="Linked")

    invite_url = as_user(api_client, owner).post(f"/api/spaces/{space.id}/invite").json()["invite_url"]

    assert invite_url == f"/join/{current_code(space.id)}"
    assert "<h1>Linked</h1>" in html(client.get(invite_url))


def test_an_absolute_invite_url_base_leads_to_the_same_page(api_client, dynamo_table, client, settings) -> None:
    settings.INVITE_URL_BASE = "https://spaces.example.com/join/"
    owner = new_user_id()
    space = space_create(owner_id=owner, name="Linked")

    invite_url = as_user(api_client, owner).post(f"/api/spaces/{space.id}/invite").json()["invite_url"]

    assert invite_url == f"https://spaces.example.com/join/{current_code(space.id)}"
    assert "<h1>Linked</h1>" in html(client.get(urlsplit(invite_url).path))
    assert invite_links_reach_the_join_page() == []


def test_a_system_check_warns_when_invite_links_miss_the_join_page(settings) -> None:
    settings.INVITE_URL_BASE = "https://spaces.example.com/invite/"

    [warning] = invite_links_reach_the_join_page()

    assert warning.id == "web.W001"


@pytest.mark.parametrize(
    ("api_docs", "staff", "docs_linked"),
    [("public", False, True), ("staff", False, False), ("staff", True, True), ("off", True, False)],
)
def test_the_home_page_links_the_join_page_the_admin_and_the_api_docs_where_served(
    client, settings, api_docs: str, staff: bool, docs_linked: bool
) -> None:
    settings.API_DOCS = api_docs
    if staff:
        client.force_login(get_user_model().objects.create_user("staffer", is_staff=True))

    page = html(client.get("/"))

    assert 'href="/join/"' in page and 'href="/admin/"' in page
    assert ('href="/api/docs"' in page) is docs_linked


# --- assets, CSP and accessibility of every page -----------------------------------------------------------------


def every_page(client: Client, code: str, settings) -> dict:
    pages = {
        "join": client.get(f"/join/{code}"),
        "not found": client.get("/join/ZZZZ2222"),
        "sign in": client.get(f"/accounts/login/?next=/join/{code}"),
        "code form": client.get("/join/"),
        "home": client.get("/"),
    }
    settings.THROTTLE_JOIN_PAGE = "2/min"
    pages["throttled"] = client.get(f"/join/{code}")
    return pages


def test_every_page_is_self_contained_under_the_csp_with_one_h1_and_a_language(client, garden, settings) -> None:
    for name, response in every_page(client, garden.invite_code, settings).items():
        page = html(response)
        assets = re.findall(r'(?:src|href)="([^"]*)"', page)
        assert "default-src 'self'" in response["Content-Security-Policy"], name
        assert page.startswith('<!DOCTYPE html>\n<html lang="en">'), name
        assert page.count("<h1") == 1, name
        assert "<script" not in page and " style=" not in page, name
        assert '<link rel="stylesheet" href="/static/web/web.css">' in page, name
        assert all(url.startswith("/") and not url.startswith("//") for url in assets), (name, assets)
