"""Hostile and careless clients: body limits, deep JSON, login lockouts, token revocation, throttles, log hygiene."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.throttling import ScopedRateThrottle
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from invites import codes
from invites.services import space_create
from spaces.models import Space
from tests.api_support import access_token, add_member, as_user, new_user_id
from tests.invariants import scan_all

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def user(db, dynamo_table):  # signing in reserves an attempt in the security table
    return get_user_model().objects.create_user(username="ada", password=PASSWORD)


def token_pair(api_client, username: str = "ada", password: str = PASSWORD):
    return api_client.post("/api/auth/token/", {"username": username, "password": password}, format="json")


def issued_earlier(token: AccessToken | RefreshToken, seconds: int = 5) -> str:
    """The token as if issued a few seconds ago: ``iat`` has whole seconds."""
    token["iat"] = int(time.time()) - seconds
    return str(token)


# --- request bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/auth/token/", "/api/spaces", "/api/spaces/join"])
def test_a_body_over_the_limit_is_413_before_it_is_read(api_client, dynamo_table, settings, path) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    as_user(api_client, new_user_id())
    body = json.dumps({"name": "x" * 2000, "username": "ada", "password": "y", "invite_code": "z"})

    response = api_client.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 1000 bytes"}
    assert not [item for item in scan_all() if item["SK"] == "METADATA"]


def test_the_default_limit_is_well_under_a_megabyte_and_a_20_mb_create_is_refused(api_client, dynamo_table) -> None:
    from django.conf import settings

    assert settings.API_MAX_BODY_BYTES <= 256 * 1024
    as_user(api_client, new_user_id())
    huge = json.dumps({"name": "x" * (20 * 1024 * 1024)})

    response = api_client.generic("POST", "/api/spaces", huge, content_type="application/json")

    assert response.status_code == 413
    assert not [item for item in scan_all() if item["SK"] == "METADATA"]


def test_a_body_within_the_limit_is_read_as_usual(api_client, dynamo_table, settings) -> None:
    settings.API_MAX_BODY_BYTES = 1000
    as_user(api_client, new_user_id())

    response = api_client.post("/api/spaces", {"name": "Small"}, format="json")

    assert response.status_code == 201


def test_a_content_length_that_is_not_a_number_is_400(api_client, dynamo_table) -> None:
    response = api_client.generic("POST", "/api/auth/token/", "{}", content_type="application/json", CONTENT_LENGTH="x")

    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]


@pytest.mark.parametrize("depth", [1000, 20_000])
@pytest.mark.parametrize(
    ("path", "signed_in"),
    [
        ("/api/auth/token/", False),
        ("/api/auth/token/refresh/", False),
        ("/api/spaces", True),
        ("/api/spaces/join", True),
    ],
)
def test_deeply_nested_json_is_the_400_of_invalid_json(
    api_client, dynamo_table, caplog, path, signed_in, depth
) -> None:
    if signed_in:
        as_user(api_client, new_user_id())
    body = "[" * depth + "]" * depth

    with caplog.at_level(logging.ERROR):
        response = api_client.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"detail": "The request body is not valid JSON"}
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_deeply_nested_form_data_to_the_admin_login_is_no_500(client, dynamo_table) -> None:
    body = "[" * 1000 + "]" * 1000

    response = client.generic("POST", "/admin/login/", body, content_type="application/json")

    assert response.status_code < 500


# --- failed logins ----------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_the_username_with_429_and_retry_after(api_client, user, settings) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 5
    answers = [token_pair(api_client, password=f"wrong {n}").status_code for n in range(5)]

    locked = token_pair(api_client)  # the right password, too late

    assert answers == [401] * 5
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= settings.LOGIN_LOCKOUT_SECONDS
    assert locked.json() == {"detail": "Too many failed sign-in attempts; try again later"}


def test_a_locked_out_unknown_username_answers_exactly_like_a_real_one(api_client, user, settings) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for username in ("ada", "nobody-here"):
        for _ in range(3):
            token_pair(api_client, username=username, password="wrong")

    real, unknown = token_pair(api_client, username="ada"), token_pair(api_client, username="nobody-here")

    assert (real.status_code, real.json()) == (unknown.status_code, unknown.json())
    assert real.status_code == 429


def test_failures_from_one_address_lock_it_for_every_username(api_client, user, settings) -> None:
    settings.LOGIN_FAILURES_PER_ADDRESS = 4
    for n in range(4):
        token_pair(api_client, username=f"guess-{n}", password="wrong")

    assert token_pair(api_client).status_code == 429  # ada never failed, but this address did


def test_the_lockout_ends_after_its_time(api_client, user, settings) -> None:
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    settings.LOGIN_LOCKOUT_SECONDS = window = 4
    if time.time() % window > 0.5:  # fixed windows: the failures and the refusal fall in one that starts now
        time.sleep(window - time.time() % window + 0.05)
    for _ in range(2):
        token_pair(api_client, password="wrong")
    assert token_pair(api_client).status_code == 429

    time.sleep(window - time.time() % window + 0.05)  # the window is over

    assert token_pair(api_client).status_code == 200


def test_the_admin_login_is_locked_out_with_a_message_on_the_form(client, dynamo_table, settings) -> None:
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})

    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})

    assert response.status_code == 200  # the form again, not the admin
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- refresh tokens and revocation --------------------------------------------------------------------


def test_a_refresh_rotates_the_token_and_the_used_one_is_refused(api_client, user) -> None:
    first = token_pair(api_client).json()["refresh"]

    rotated = api_client.post("/api/auth/token/refresh/", {"refresh": first}, format="json")
    again = api_client.post("/api/auth/token/refresh/", {"refresh": first}, format="json")

    assert rotated.status_code == 200 and rotated.json()["refresh"] != first
    assert again.status_code == 401


def test_a_password_change_ends_every_earlier_token(api_client, user, dynamo_table) -> None:
    refresh = RefreshToken.for_user(user)
    old_refresh, old_access = issued_earlier(refresh), issued_earlier(refresh.access_token)
    user.set_password("a brand new password")
    user.save()

    refused_refresh = api_client.post("/api/auth/token/refresh/", {"refresh": old_refresh}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {old_access}")
    refused_access = api_client.get("/api/spaces")
    api_client.credentials()
    fresh = token_pair(api_client, password="a brand new password")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {fresh.json()['access']}")

    assert refused_refresh.status_code == 401
    assert refused_access.status_code == 401
    assert api_client.get("/api/spaces").status_code == 200  # signing in again works at once


def test_a_deactivated_user_loses_api_access_at_once(api_client, user, dynamo_table) -> None:
    access = issued_earlier(AccessToken.for_user(user))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/spaces").status_code == 200

    user.is_active = False
    user.save()

    assert api_client.get("/api/spaces").status_code == 401
    assert user.credentials_changed_at is not None


def test_the_revocation_check_costs_no_relational_query(
    api_client, user, dynamo_table, django_assert_num_queries
) -> None:
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")

    with django_assert_num_queries(0):
        assert api_client.get("/api/spaces").status_code == 200


def test_a_deleted_user_leaves_no_membership_and_their_owned_spaces_are_reported(
    api_client, user, dynamo_table, caplog
) -> None:
    user_id = str(user.pk)
    owned = space_create(owner_id=user_id, name="Ada's")
    other = space_create(owner_id=new_user_id(), name="Someone else's")
    add_member(other.id, user_id, "member")
    access = issued_earlier(AccessToken.for_user(user))

    with caplog.at_level(logging.WARNING, logger="spaces"):
        user.delete()

    assert not [item for item in scan_all() if item["SK"] == f"MEMBER#{user_id}"]
    assert Space.get(*Space.key(other.id), consistent_read=True).member_count == 1
    assert any(owned.id in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/spaces").status_code == 401


def test_a_user_whose_memberships_cannot_be_removed_is_not_deleted(user, dynamo_table, dynamodb_unreachable) -> None:
    from accounts.exceptions import UserDeletionBlocked

    with pytest.raises(UserDeletionBlocked), transaction.atomic():
        user.delete()

    assert get_user_model().objects.filter(pk=user.pk).exists()


@pytest.mark.parametrize("user_id", ["42", "ada", "../../etc", ""])
def test_a_token_whose_user_id_is_not_a_uuid_is_refused_in_debug_mode_too(
    api_client, dynamo_table, settings, user_id
) -> None:
    settings.DEBUG = True
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token(user_id)}")

    assert api_client.get("/api/spaces").status_code == 401


# --- abuse of legitimate endpoints --------------------------------------------------------------------


def test_creating_spaces_is_throttled_per_user_with_retry_after(api_client, dynamo_table, monkeypatch) -> None:
    # DRF reads its rates once, into the throttle class.
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "space_create", "3/min")
    as_user(api_client, new_user_id())

    answers = [api_client.post("/api/spaces", {"name": f"S{n}"}, format="json") for n in range(4)]
    as_user(api_client, new_user_id())
    someone_else = api_client.post("/api/spaces", {"name": "Mine"}, format="json")

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert someone_else.status_code == 201
    assert len([item for item in scan_all() if item["SK"] == "METADATA"]) == 4


def test_regenerating_is_throttled_per_user_with_retry_after(api_client, space_people, monkeypatch) -> None:
    # DRF reads its rates once, into the throttle class.
    monkeypatch.setitem(ScopedRateThrottle.THROTTLE_RATES, "invite_regenerate", "2/min")
    as_user(api_client, space_people.owner)

    answers = [api_client.post(f"/api/spaces/{space_people.space.id}/invite") for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1]["Retry-After"]) > 0


def test_the_default_throttles_stop_twenty_creates_and_twenty_regenerations(api_client, space_people) -> None:
    as_user(api_client, space_people.owner)

    creates = [api_client.post("/api/spaces", {"name": f"S{n}"}, format="json").status_code for n in range(20)]
    regenerations = [api_client.post(f"/api/spaces/{space_people.space.id}/invite").status_code for _ in range(20)]

    assert 429 in creates and 429 in regenerations


# --- logs -----------------------------------------------------------------------------------------------


def test_an_unavailable_dynamodb_never_logs_the_code_of_a_preview(api_client, dynamodb_unreachable, caplog) -> None:
    as_user(api_client, new_user_id())

    with caplog.at_level(logging.DEBUG):
        response = api_client.get("/api/invites/SECR2345")

    assert response.status_code == 503
    assert caplog.records
    assert not [r for r in caplog.records if "SECR2345" in r.getMessage() or "SECR2345" in (r.exc_text or "")]


def test_new_codes_reach_the_web_log_only_as_fingerprints(api_client, space_people, caplog) -> None:
    as_user(api_client, space_people.owner)

    with caplog.at_level(logging.INFO, logger="invites"):
        new_code = api_client.post(f"/api/spaces/{space_people.space.id}/invite").json()["invite_code"]

    messages = [record.getMessage() for record in caplog.records]
    assert any(codes.fingerprint(new_code) in message for message in messages)
    assert not [message for message in messages if new_code in message]


def test_a_bad_host_header_is_one_warning_line_without_a_traceback(client, caplog) -> None:
    with caplog.at_level(logging.DEBUG):
        response = client.get("/api/spaces", HTTP_HOST="evil.example.com")

    assert response.status_code == 400
    host_lines = [r for r in caplog.records if "Invalid HTTP_HOST" in r.getMessage()]
    assert [r.levelname for r in host_lines] == ["WARNING"]
    assert host_lines[0].exc_info is None and not host_lines[0].exc_text


def test_the_admin_login_never_follows_a_next_to_another_site(client, dynamo_table) -> None:
    get_user_model().objects.create_superuser("root", password=PASSWORD)

    response = client.post("/admin/login/?next=https://evil.example.com/", {"username": "root", "password": PASSWORD})

    assert response.status_code == 302
    assert "evil.example.com" not in response["Location"]


def test_an_admin_post_without_a_csrf_token_is_refused(db) -> None:
    from django.test import Client

    get_user_model().objects.create_superuser("root", password=PASSWORD)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(get_user_model().objects.get(username="root"))

    response = strict.post("/admin/invites/dynamospace/backfill/")

    assert response.status_code == 403


def test_a_spoofed_x_forwarded_for_does_not_escape_the_address_lockout(api_client, user, settings) -> None:
    settings.LOGIN_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        api_client.post(
            "/api/auth/token/",
            {"username": f"guess-{n}", "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )

    response = api_client.post(
        "/api/auth/token/", {"username": "ada", "password": PASSWORD}, format="json", HTTP_X_FORWARDED_FOR="10.9.9.9"
    )

    assert response.status_code == 429
