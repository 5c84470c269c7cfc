"""JWT authentication: obtaining and refreshing tokens, and every way a token can be bad."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from invites.services import space_create
from tests.api_support import access_token, as_user, new_user_id

PASSWORD = "correct horse battery staple"

# One request per endpoint of the spaces API, all of which need a token.
PROTECTED = [
    ("get", "/api/spaces"),
    ("post", "/api/spaces"),
    ("get", "/api/spaces/{space_id}"),
    ("post", "/api/spaces/{space_id}/invite"),
    ("get", "/api/spaces/{space_id}/members"),
    ("post", "/api/spaces/join"),
    ("get", "/api/invites/{code}"),
]


@pytest.fixture
def user(db, dynamo_table):  # signing in reserves an attempt in the security table
    return get_user_model().objects.create_user(username="ada", password=PASSWORD)


def _tampered(token: str) -> str:
    header, _payload, signature = token.split(".")
    replaced = AccessToken(token, verify=False)  # type: ignore[arg-type]  # simplejwt annotates the encoded token as Token
    replaced["user_id"] = new_user_id()
    _, forged_payload, _ = str(replaced).split(".")
    return f"{header}.{forged_payload}.{signature}"


def _expired(user_id: str) -> str:
    token = AccessToken()
    token["user_id"] = user_id
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _refresh_token(user_id: str) -> str:
    token = RefreshToken()
    token["user_id"] = user_id
    return str(token)


def _without_user_id() -> str:
    return str(AccessToken())


def _signed_with_another_key(user_id: str) -> str:
    import jwt

    claims = {"token_type": "access", "user_id": user_id, "exp": 4102444800, "jti": "x"}
    return jwt.encode(claims, "another-key-that-is-long-enough-for-hs256-0123456789")


BAD_AUTHORIZATIONS = {
    "missing": lambda uid: None,
    "malformed": lambda uid: "Bearer not.a.jwt",
    "garbage": lambda uid: "Bearer %%%",
    "empty bearer": lambda uid: "Bearer ",
    "two parts": lambda uid: f"Bearer {access_token(uid)} extra",
    "tampered": lambda uid: f"Bearer {_tampered(access_token(uid))}",
    "expired": lambda uid: f"Bearer {_expired(uid)}",
    "refresh token": lambda uid: f"Bearer {_refresh_token(uid)}",
    "no user id": lambda uid: f"Bearer {_without_user_id()}",
    "foreign signature": lambda uid: f"Bearer {_signed_with_another_key(uid)}",
    "basic scheme": lambda uid: "Basic YWRhOnB3",
}


@pytest.mark.parametrize("kind", list(BAD_AUTHORIZATIONS))
@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_endpoint_refuses_a_bad_token_with_401(api_client, kind, method, path) -> None:
    # Authentication comes first: no table is needed to be refused.
    header = BAD_AUTHORIZATIONS[kind](new_user_id())
    if header is not None:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    url = path.format(space_id="0190c2a4-0000-7000-8000-000000000000", code="ABCDEFGH")

    response = getattr(api_client, method)(url, {"invite_code": "ABCDEFGH", "name": "x"}, format="json")

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_obtaining_a_token_pair_with_username_and_password(api_client, user) -> None:
    response = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert AccessToken(body["access"])["user_id"] == str(user.id)


def test_the_token_endpoints_accept_a_trailing_slash(api_client, user) -> None:
    pair = api_client.post("/api/auth/token/", {"username": "ada", "password": PASSWORD}, format="json").json()

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")

    assert refreshed.status_code == 200


def test_a_token_from_the_endpoint_opens_the_spaces_api(api_client, user, dynamo_table) -> None:
    pair = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")

    created = api_client.post("/api/spaces", {"name": "Mine"}, format="json").json()

    assert created["ownerId"] == str(user.id)
    assert [s["spaceId"] for s in api_client.get("/api/spaces").json()["results"]] == [created["spaceId"]]


def test_a_refreshed_access_token_works(api_client, user, dynamo_table) -> None:
    pair = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json").json()

    refreshed = api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")

    assert refreshed.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    assert api_client.get("/api/spaces").status_code == 200


@pytest.mark.parametrize("password", ["wrong", ""])
def test_wrong_credentials_are_401_or_400(api_client, user, password) -> None:
    response = api_client.post("/api/auth/token", {"username": "ada", "password": password}, format="json")

    assert response.status_code == (401 if password else 400)
    assert "detail" in response.json()


def test_an_inactive_user_gets_no_token(api_client, user) -> None:
    user.is_active = False
    user.save()

    response = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize("refresh", ["garbage", "a.b.c"])
def test_an_invalid_refresh_token_is_401(api_client, db, refresh) -> None:
    response = api_client.post("/api/auth/token/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 401


def test_refreshing_for_a_deleted_user_is_401(api_client, user, dynamo_table) -> None:
    pair = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json").json()
    user.delete()

    response = api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "No active account found for the given token."


def test_refreshing_for_a_deactivated_user_is_401(api_client, user) -> None:
    pair = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json").json()
    user.is_active = False
    user.save()

    response = api_client.post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 401


def test_an_access_token_is_not_a_refresh_token(api_client, db) -> None:
    response = api_client.post("/api/auth/token/refresh", {"refresh": access_token(new_user_id())}, format="json")

    assert response.status_code == 401


def test_the_token_endpoint_wants_json(api_client, db) -> None:
    response = api_client.post("/api/auth/token", "username=ada", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400


def test_the_spaces_api_makes_no_relational_query(api_client, user, dynamo_table, django_assert_num_queries) -> None:
    pair = api_client.post("/api/auth/token", {"username": "ada", "password": PASSWORD}, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    joinable = space_create(owner_id=new_user_id(), name="Other")

    with django_assert_num_queries(0):
        space_id = api_client.post("/api/spaces", {"name": "Mine"}, format="json").json()["spaceId"]
        assert api_client.get("/api/spaces").status_code == 200
        assert api_client.get(f"/api/spaces/{space_id}").status_code == 200
        assert api_client.get(f"/api/spaces/{space_id}/members").status_code == 200
        assert api_client.post(f"/api/spaces/{space_id}/invite").status_code == 200
        assert api_client.get(f"/api/invites/{joinable.invite_code}").status_code == 200
        join = api_client.post("/api/spaces/join", {"invite_code": joinable.invite_code}, format="json")
        assert join.status_code == 200


def test_a_token_for_a_user_the_database_does_not_know_still_works(api_client, dynamo_table) -> None:
    """Stateless by design: the signed claim is the identity (see docs/api.md)."""
    response = as_user(api_client, new_user_id()).get("/api/spaces")

    assert response.status_code == 200
