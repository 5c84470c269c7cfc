"""The error contract: bodies that are not JSON, DynamoDB failures, unknown paths, slashes."""

from __future__ import annotations

import logging
import re

import pytest

from api import invites as invite_views
from api import spaces as views
from tests.api_support import as_user, new_user_id

# --- bodies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/spaces", "/api/spaces/join"])
@pytest.mark.parametrize("body", ["{not json", '{"name": "x",}', "\x00", ""])
def test_a_body_that_is_not_json_is_400(api_client, dynamo_table, path, body) -> None:
    response = as_user(api_client, new_user_id()).post(path, body, content_type="application/json")

    assert response.status_code == 400
    detail = response.json()["detail"]
    if body:
        assert detail == "The request body is not valid JSON"
        assert "Expecting" not in detail  # the parser's own words stay inside
    else:  # an empty body is an empty object: its fields are missing
        assert detail == "Invalid input"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_in_another_format_is_400(api_client, dynamo_table, content_type) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces", "name=x", content_type=content_type)

    assert response.status_code == 400
    assert response.json() == {"detail": "The request body must be JSON (Content-Type: application/json)"}


@pytest.mark.parametrize("body", ["[]", '"ABCDEFGH"', "42", "null", "true"])
def test_a_json_body_that_is_not_an_object_is_400_with_field_errors(api_client, dynamo_table, body) -> None:
    response = as_user(api_client, new_user_id()).post("/api/spaces/join", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input"
    assert response.json()["errors"]


# --- DynamoDB failures ------------------------------------------------------------------------


def _requests(space_id: str, code: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", "/api/spaces", None),
        ("post", "/api/spaces", {"name": "x"}),
        ("get", f"/api/spaces/{space_id}", None),
        ("get", f"/api/spaces/{space_id}/members", None),
        ("post", "/api/spaces/join", {"invite_code": code}),
        ("get", f"/api/invites/{code}", None),
    ]


def test_an_unreachable_dynamodb_is_503_with_retry_after_everywhere_but_regenerate(
    api_client, space_people, dynamodb_unreachable, caplog
) -> None:
    as_user(api_client, space_people.owner)
    with caplog.at_level(logging.WARNING):
        for method, path, body in _requests(space_people.space.id, "ABCDEFGH"):
            response = getattr(api_client, method)(path, body, format="json")
            assert response.status_code == 503, path
            assert response.json() == {"detail": "The service is temporarily unavailable; please try again shortly"}, (
                path
            )
            assert response.headers["Retry-After"] == "5"
    assert "cannot be reached" in caplog.text


def test_dynamodb_throttling_is_503(api_client, space_people, failing_dynamo_operation) -> None:
    failing_dynamo_operation("BatchGetItem", "ProvisionedThroughputExceededException", "slow down")

    response = as_user(api_client, space_people.owner).get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 503
    assert "slow down" not in response.content.decode()


def test_an_unexpected_database_error_is_a_json_500_without_its_text(
    api_client, space_people, failing_dynamo_operation, caplog
) -> None:
    failing_dynamo_operation("BatchGetItem", "InternalServerError", "shard 12 corrupted")

    with caplog.at_level(logging.ERROR):
        response = as_user(api_client, space_people.owner).get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "shard 12" in caplog.text
    assert "shard 12" not in response.content.decode()


def test_a_bug_is_a_json_500_and_logged(api_client, space_people, monkeypatch, caplog) -> None:
    def broken(**_: object) -> None:
        raise KeyError("internal detail")

    monkeypatch.setattr(views, "space_member_count", broken)

    with caplog.at_level(logging.ERROR):
        response = as_user(api_client, space_people.owner).get(f"/api/spaces/{space_people.space.id}")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "internal detail" in caplog.text


def test_a_bug_during_regeneration_is_the_guides_500(api_client, space_people, monkeypatch) -> None:
    def broken(**_: object) -> None:
        raise ValueError("internal detail")

    monkeypatch.setattr(invite_views, "invite_code_regenerate", broken)

    response = as_user(api_client, space_people.owner).post(f"/api/spaces/{space_people.space.id}/invite")

    assert response.status_code == 500
    assert response.json() == {"detail": "Failed to regenerate invite code"}


# --- paths, slashes, methods ------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_every_path_works_with_and_without_a_trailing_slash(api_client, space_people, slash) -> None:
    space_id = space_people.space.id
    as_user(api_client, space_people.owner)
    code = space_people.code

    assert api_client.get(f"/api/spaces{slash}").status_code == 200
    assert api_client.get(f"/api/spaces/{space_id}{slash}").status_code == 200
    assert api_client.get(f"/api/spaces/{space_id}/members{slash}").status_code == 200
    assert api_client.get(f"/api/invites/{code}{slash}").status_code == 200
    assert api_client.post(f"/api/spaces{slash}", {"name": "x"}, format="json").status_code == 201
    assert api_client.post(f"/api/spaces/{space_id}/invite{slash}").status_code == 200
    as_user(api_client, new_user_id())
    joined = api_client.post(f"/api/spaces/join{slash}", {"invite_code": space_people.code}, format="json")
    assert joined.status_code == 200
    assert api_client.get(f"/api/schema{slash}").status_code == 200
    assert api_client.get(f"/api/docs{slash}").status_code == 200


def test_an_unknown_api_path_is_a_json_404(api_client) -> None:
    response = api_client.get("/api/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_id_with_a_slash_in_it_is_a_json_404(api_client) -> None:
    response = as_user(api_client, new_user_id()).get("/api/spaces/a%2Fb/members")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_a_wrong_method_is_a_json_405(api_client, dynamo_table) -> None:
    response = as_user(api_client, new_user_id()).delete("/api/spaces/some-space")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


def test_the_schema_is_openapi_3_and_documents_every_status(api_client) -> None:
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    statuses = {path: {m: set(op["responses"]) for m, op in ops.items()} for path, ops in paths.items()}
    assert statuses["/api/spaces/{space_id}/invite"]["post"] >= {"200", "401", "403", "404", "500"}
    assert statuses["/api/spaces/join"]["post"] >= {"200", "400", "401", "409", "429", "503"}
    assert statuses["/api/spaces/{space_id}"]["get"] >= {"200", "400", "401", "403", "404", "503"}
    assert statuses["/api/invites/{code}"]["get"] >= {"200", "400", "401", "404", "429", "503"}
    assert statuses["/api/spaces"]["get"] >= {"200", "400", "401", "503"}
    assert statuses["/api/spaces"]["post"] >= {"201", "400", "401", "503"}
    assert statuses["/api/spaces/{space_id}/members"]["get"] >= {"200", "400", "401", "403", "404", "503"}
    assert {"/api/auth/token", "/api/auth/token/refresh"} <= set(paths)
    assert "bearerFormat" in str(schema["components"]["securitySchemes"])


def test_the_swagger_ui_page_points_at_the_schema_with_local_assets_only(api_client) -> None:
    page = api_client.get("/api/docs/")
    script = api_client.get("/api/docs/?script=")

    assert page.status_code == 200
    sources = re.findall(rb'(?:src|href)="([^"]+)"', page.content)
    assert sources and all(source.startswith(b"/") for source in sources), sources  # nothing from a CDN
    assert b"<script>" not in page.content  # no inline script: the CSP allows none
    assert script.status_code == 200 and b"/api/schema" in script.content
