"""Schemathesis against the app's own OpenAPI schema, in process (WSGI), authenticated.

Every operation of ``/api/schema/`` gets generated requests, valid and
invalid, sent as a real user (a token from ``/api/auth/token``) who owns a
space. A part of the generated space ids and codes is swapped for that
space's real ones so the success paths are exercised too. Each response must
not be a 5xx and must match the schema: documented status, content type,
headers and body. Bounded: a few dozen examples per operation, no deadline.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spaces.models import Space
from tests.api_support import access_token, new_user_id

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
PASSWORD = "fuzzing is fun 42"


@pytest.fixture
def api_schema(dynamo_table: Any) -> Any:
    from lifestyle_spaces.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def space_owner(db: Any, dynamo_table: Any, client: Any) -> dict[str, str]:
    """A real user with a real token, who owns one space."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="fuzzer", password=PASSWORD)
    pair = client.post("/api/auth/token", {"username": "fuzzer", "password": PASSWORD}, content_type="application/json")
    token = pair.json()["access"]
    created = client.post(
        "/api/spaces", {"name": "Fuzzed"}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    return {"token": token, "space_id": created.json()["spaceId"]}


def _sometimes(value: object) -> bool:
    """Deterministically true for about half of the generated values."""
    return zlib.crc32(repr(value).encode()) % 2 == 0


def _current_code(space_id: str) -> str | None:
    return Space.get(*Space.key(space_id), consistent_read=True).invite_code


def _aim_at_real_data(case: Any, owner: dict[str, str]) -> str:
    """Swap in the real space id or code for about half of the cases; the token to send."""
    token = owner["token"]
    path_parameters = case.path_parameters or {}
    if "space_id" in path_parameters and _sometimes(path_parameters["space_id"]):
        path_parameters["space_id"] = owner["space_id"]
    if "code" in path_parameters and _sometimes(path_parameters["code"]):
        path_parameters["code"] = _current_code(owner["space_id"])
    if isinstance(case.body, dict) and "invite_code" in case.body and _sometimes(case.body["invite_code"]):
        case.body["invite_code"] = _current_code(owner["space_id"])
        token = access_token(new_user_id())  # someone new, so that joining can succeed
    return token


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_schema(case: Any, space_owner: dict[str, str]) -> None:
    token = _aim_at_real_data(case, space_owner)

    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
