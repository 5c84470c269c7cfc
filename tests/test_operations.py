"""Probes, request ids, structured logs and metrics (the operations app), through Django's test client."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from prometheus_client import REGISTRY

from devtools.embedded_dynamodb import free_port
from invites import codes
from invites import services as engine
from invites.services import space_create
from operations.log_context import JsonFormatter, RequestIdFilter
from spaces import dynamodb
from tests.api_support import access_token, new_user_id


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line as the production JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


def log_entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- probes -------------------------------------------------------------------------------


def test_liveness_answers_without_touching_dynamodb(client, dynamo_calls) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert dynamo_calls.total == 0


def test_readiness_is_ok_when_the_table_answers(client, dynamo_table) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_is_503_with_a_reason_when_the_table_is_missing(client, dynamo_table, connect_with) -> None:
    connect_with(DYNAMODB_TABLE="no-such-table")

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "dynamodb_table_missing"}
    assert b"no-such-table" not in response.content


def test_readiness_fails_fast_when_dynamodb_is_down(client, dynamo_table, connect_with) -> None:
    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    connect_with(DYNAMODB_HOST=dead_endpoint)  # with the app's retries: the probe makes one attempt of its own

    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "dynamodb_unreachable"}
    assert dead_endpoint.encode() not in response.content
    assert elapsed < 5  # one attempt, no retries: a probe must not hang


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_plain_http_by_ip_while_https_redirects_are_on(client, dynamo_table, settings, path) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["spaces.example.com"]

    probe = client.get(path, HTTP_HOST="10.0.3.17:8000")
    page = client.get("/admin/login/", HTTP_HOST="spaces.example.com")

    assert probe.status_code == 200
    assert page.status_code == 301
    assert page["Location"].startswith("https://")


def test_probes_refuse_writes(client) -> None:
    assert client.post("/healthz").status_code == 405


# --- request ids and logs -------------------------------------------------------------------


def test_every_response_carries_a_fresh_request_id(client) -> None:
    first = client.get("/healthz")
    second = client.get("/healthz")

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_sane_incoming_request_id_is_kept(client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21-trace")

    assert response["X-Request-ID"] == "lb-7f3a9c21-trace"


@pytest.mark.parametrize("incoming", ["short", "has spaces in it", "x" * 200, 'quote"s-and;more'])
def test_an_unusable_incoming_request_id_is_replaced(client, incoming) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.urls("tests.ops_site.urls")
def test_every_log_line_of_a_request_carries_its_id(client, dynamo_table, captured_logs) -> None:
    space = space_create(owner_id="owner", name="Logged")

    response = client.post(f"/test-only/regenerate/{space.id}", HTTP_X_REQUEST_ID="req-0123456789")

    lines = [e for e in log_entries(captured_logs) if e["logger"] in {"invites", "operations.access"}]
    assert response.status_code == 200
    assert [e["logger"] for e in lines] == ["invites", "operations.access"]
    assert {e["request_id"] for e in lines} == {"req-0123456789"}
    assert "via api" in lines[0]["message"]


@pytest.mark.urls("tests.ops_site.urls")
def test_a_server_error_is_logged_with_its_traceback_and_request_id(client, captured_logs) -> None:
    client.raise_request_exception = False

    response = client.get("/test-only/fail", HTTP_X_REQUEST_ID="req-failing-0001")

    errors = [e for e in log_entries(captured_logs) if e["level"] == "ERROR"]
    assert response.status_code == 500
    assert b"unexpected failure" not in response.content
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-failing-0001"
    assert "RuntimeError: an unexpected failure" in errors[0]["exception"]


def test_log_lines_outside_a_request_keep_the_guide_format(dynamo_table, capsys) -> None:
    record = logging.LogRecord("invites", logging.INFO, __file__, 1, "Found %d spaces", (2,), None)
    RequestIdFilter().filter(record)

    formatted = logging.Formatter("%(asctime)s - %(levelname)s - %(request_tag)s%(message)s").format(record)

    assert formatted.endswith(" - INFO - Found 2 spaces")
    assert record.request_id is None  # type: ignore[attr-defined]  # set by RequestIdFilter


@pytest.mark.django_db
def test_request_logs_never_contain_tokens_passwords_bodies_or_codes(
    api_client, dynamo_table, captured_logs, settings
) -> None:
    settings.DEBUG = False
    settings.METRICS_TOKEN = "metrics-secret-token-1"
    token = access_token(new_user_id())

    api_client.post("/api/auth/token/", {"username": "someone", "password": "body-secret-3"}, format="json")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    api_client.post("/api/spaces/join", {"invite_code": "CODESECR"}, format="json")
    api_client.get("/api/invites/WXYZ6789?password=query-secret-2")
    api_client.credentials(HTTP_AUTHORIZATION="Bearer metrics-secret-token-1")
    api_client.get("/metrics")

    written = captured_logs.getvalue()
    assert written.count('"operations.access"') == 3  # /metrics is logged at DEBUG
    for secret in ("metrics-secret-token-1", "query-secret-2", "body-secret-3", token, "CODESECR", "WXYZ6789"):
        assert secret not in written


# --- metrics -----------------------------------------------------------------------------------


def test_metrics_do_not_exist_in_production_without_a_token(client, settings) -> None:
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""

    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token_when_one_is_set(client, settings) -> None:
    settings.DEBUG = False
    settings.METRICS_TOKEN = "scrape-me"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me").status_code == 200


def test_requests_are_counted_by_url_pattern_and_status(client, settings) -> None:
    settings.METRICS_TOKEN = "scrape-me"
    before = counter("lifestyle_http_requests_total", method="GET", route="healthz", status="200")

    client.get("/healthz")
    page = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")

    assert counter("lifestyle_http_requests_total", method="GET", route="healthz", status="200") == before + 1
    assert b'lifestyle_http_requests_total{method="GET",route="healthz",status="200"}' in page.content


def test_unknown_paths_share_one_label(client) -> None:
    before = counter("lifestyle_http_requests_total", method="GET", route="<unmatched>", status="404")

    client.get("/guess/ABCD2345")
    client.get("/guess/WXYZ6789")

    assert counter("lifestyle_http_requests_total", method="GET", route="<unmatched>", status="404") == before + 2


def test_static_files_share_one_label(client) -> None:
    before = counter("lifestyle_http_requests_total", method="GET", route="<static>", status="404")

    client.get("/static/admin/css/no-such-file.css")

    assert counter("lifestyle_http_requests_total", method="GET", route="<static>", status="404") == before + 1


def test_engine_activity_is_counted(dynamo_table) -> None:
    space = space_create(owner_id="owner", name="Counted")
    generated = counter("lifestyle_invite_codes_generated_total")
    changes = counter("lifestyle_invite_code_changes_total", source="admin")
    transactions = counter("lifestyle_dynamodb_calls_total", operation="TransactWriteItems")

    engine.invite_code_regenerate(space_id=space.id, actor_id="staff", source="admin")

    assert counter("lifestyle_invite_codes_generated_total") == generated + 1
    assert counter("lifestyle_invite_code_changes_total", source="admin") == changes + 1
    assert counter("lifestyle_dynamodb_calls_total", operation="TransactWriteItems") == transactions + 1


def test_collisions_are_counted(dynamo_table, monkeypatch) -> None:
    taken = space_create(owner_id="owner", name="Taken").invite_code
    draws = iter([taken, "FRESH234"])
    monkeypatch.setattr(codes, "generate_code", lambda: next(draws))
    before = counter("lifestyle_invite_code_collisions_total", kind="claim")

    space_create(owner_id="owner", name="Second")

    assert counter("lifestyle_invite_code_collisions_total", kind="claim") == before + 1


def throttled_once() -> Any:
    """A botocore before-send hook: the first attempt of each call is refused as throttled."""
    refused: set[int] = set()

    def before_send(request: Any, **_: Any) -> AWSResponse | None:
        call = id(request.context)
        if call in refused:
            return None
        refused.add(call)
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
        raw = type("Raw", (), {"stream": lambda self, **_: iter([body])})()
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, raw)

    return before_send


def test_throttled_attempts_are_counted_and_retried(dynamo_table, client_events) -> None:
    space = space_create(owner_id="owner", name="Throttled")
    before = counter("lifestyle_dynamodb_throttles_total", operation="BatchGetItem")
    client_events.register("before-send.dynamodb", throttled_once())

    found = dynamodb.get_many([("SPACE#" + space.id, "METADATA")])

    assert len(found) == 1  # botocore retried the throttled attempt
    assert counter("lifestyle_dynamodb_throttles_total", operation="BatchGetItem") == before + 1
