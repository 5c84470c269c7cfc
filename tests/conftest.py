"""Fixtures: one moto server per test process, a fresh DynamoDB table per test."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from devtools import dynamodb_local, embedded_dynamodb, gunicorn_process
from spaces import dynamodb
from spaces.dynamodb import TableItem


@pytest.fixture(autouse=True)
def terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress bars are as wide whichever way pytest runs (a terminal, CI, xdist workers)."""
    monkeypatch.setenv("COLUMNS", "160")


# `make test-dynamodb-local` sets TEST_DYNAMODB=local: AWS's DynamoDB Local answers instead of moto.
ON_DYNAMODB_LOCAL = os.environ.get("TEST_DYNAMODB") == "local"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[embedded_dynamodb.EmbeddedDynamo]:
    """The DynamoDB server of this test process: moto (the embedded one), or DynamoDB Local."""
    server = dynamodb_local.start() if ON_DYNAMODB_LOCAL else embedded_dynamodb.start()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On DynamoDB Local, tests marked ``moto_only(reason)`` are skipped with their reason."""
    for item in items:
        marker = item.get_closest_marker("moto_only")
        if ON_DYNAMODB_LOCAL and marker:
            item.add_marker(pytest.mark.skip(reason=f"moto only: {marker.args[0]}"))


class TableUnderTest(NamedTuple):
    table_name: str
    host: str | None


@pytest.fixture
def server(dynamo_table: TableUnderTest, tmp_path: Path) -> Iterator[Any]:
    """Production gunicorn with two workers on this test's table; the join and member-change limits lifted."""
    env = gunicorn_process.production_environment(
        DYNAMODB_HOST=dynamo_table.host or "",  # always a server here: moto's or DynamoDB Local
        DYNAMODB_TABLE=dynamo_table.table_name,
        THROTTLE_INVITE_JOIN="100000/min",
        THROTTLE_MEMBER_CHANGES="100000/min",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    (tmp_path / "metrics").mkdir()
    started = gunicorn_process.start(env=env, workers=2, threads=4)
    yield started
    started.stop()


@pytest.fixture
def connect_with(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Any:
    """``connect_with(DYNAMODB_TABLE=..., DYNAMODB_HOST=..., other settings)``: the process talks to that from now on.

    The table and host are the models' ``Meta`` (what the product reads them
    from), the rest Django settings; both are restored when the test ends.
    """

    def connect(**values: Any) -> TableUnderTest:
        meta_names = {
            "DYNAMODB_TABLE": "table_name",
            "DYNAMODB_HOST": "host",
            "DYNAMODB_CONNECT_TIMEOUT": "connect_timeout_seconds",
            "DYNAMODB_READ_TIMEOUT": "read_timeout_seconds",
        }
        for name, value in values.items():
            if name in meta_names:
                monkeypatch.setattr(TableItem.Meta, meta_names[name], value)
            else:
                setattr(settings, name, value)
        return TableUnderTest(TableItem.Meta.table_name, TableItem.Meta.host)

    return connect


def _fresh_table(connect_with: Any, server: embedded_dynamodb.EmbeddedDynamo, *, legacy: bool) -> Any:
    from invites.services import LEGACY_CODES_RECORDED
    from spaces.models import TableFlag
    from spaces.table import table_create_if_missing

    table = connect_with(DYNAMODB_TABLE=f"test-{uuid.uuid4().hex[:12]}", DYNAMODB_HOST=server.endpoint_url)
    client = dynamodb.botocore_client()  # the test may point the process elsewhere meanwhile
    table_create_if_missing()  # and its security table: throttles and lockouts start from zero
    if legacy:
        # Before anything reads the flag: nothing has cached it.
        TableFlag(*TableFlag.key(LEGACY_CODES_RECORDED)).delete()
    # Counters count in fixed windows of a minute or a multiple of it: start a test well inside one.
    time.sleep(max(0.0, time.time() % 60 - 59))
    yield table
    client.delete_table(TableName=table.table_name)
    client.delete_table(TableName=table.table_name + dynamodb.SECURITY_TABLE_SUFFIX)


@pytest.fixture
def dynamo_table(moto_server: embedded_dynamodb.EmbeddedDynamo, connect_with: Any) -> Iterator[TableUnderTest]:
    """A new, empty table created by our own command logic (legacy codes recorded)."""
    yield from _fresh_table(connect_with, moto_server, legacy=False)


@pytest.fixture
def legacy_table(moto_server: embedded_dynamodb.EmbeddedDynamo, connect_with: Any) -> Iterator[TableUnderTest]:
    """A table as the earlier system left it: no record that legacy codes were claimed."""
    yield from _fresh_table(connect_with, moto_server, legacy=True)


@pytest.fixture
def client_events(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``client_events.register(event, handler)`` on the test's botocore client; unregistered afterwards."""
    from tests.faults import ClientEvents

    # The test's table (a legacy one if it asked for that) comes first: it makes the client.
    request.getfixturevalue("legacy_table" if "legacy_table" in request.fixturenames else "dynamo_table")
    events = ClientEvents()
    yield events
    events.unregister_all()


class CallCounter:
    """Counts DynamoDB API calls (not HTTP retries) made through the shared client; ``security`` apart."""

    READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable"})

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.security: Counter[str] = Counter()  # calls to the security table (accounts.security)

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")  # the request as sent
        actions = [action for item in body.get("TransactItems", []) for action in item.values()]
        tables = [str(table) for table in (body.get("TableName"), *(a.get("TableName") for a in actions))]
        security = any(table.endswith(dynamodb.SECURITY_TABLE_SUFFIX) for table in tables)
        (self.security if security else self.calls)[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op in self.READS)

    @property
    def writes(self) -> int:
        return self.total - self.reads

    def reset(self) -> None:
        self.calls.clear()
        self.security.clear()


@pytest.fixture
def dynamo_calls(client_events: Any) -> CallCounter:
    counter = CallCounter()
    client_events.register("before-call.dynamodb", counter)
    return counter


# --- REST API ---------------------------------------------------------------------------


@pytest.fixture
def api_client() -> Iterator[Any]:
    """A DRF test client."""
    from rest_framework.test import APIClient

    yield APIClient()


@pytest.fixture
def space_people(dynamo_table: TableUnderTest) -> Any:
    """A private space with an owner, an admin, a member and a viewer, and an outsider."""
    from tests.api_support import people_in_a_space

    return people_in_a_space()


@pytest.fixture
def failing_dynamo_operation(client_events: Any) -> Any:
    """``fail(operation, code, message)``: that DynamoDB operation answers with an error from now on."""
    from types import SimpleNamespace

    def fail(operation: str, code: str, message: str) -> None:
        def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
            parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 500}}
            return SimpleNamespace(status_code=500, headers={}), parsed

        client_events.register(f"before-call.dynamodb.{operation}", answer)

    return fail


@pytest.fixture
def dynamodb_unreachable(dynamo_table: TableUnderTest, connect_with: Any) -> Iterator[TableUnderTest]:
    """DynamoDB cannot be reached: a closed port on 127.0.0.1, one attempt per call; the table is back afterwards."""
    live = {"DYNAMODB_HOST": dynamo_table.host}
    yield connect_with(DYNAMODB_HOST=f"http://127.0.0.1:{embedded_dynamodb.free_port()}", DYNAMODB_MAX_ATTEMPTS=1)
    connect_with(**live)


# --- admin: users with and without the invite-code permissions --------------------------


@pytest.fixture
def admin_users(db: None) -> dict[str, Any]:
    """A superuser, staff who may change codes, staff who may only view, and staff with neither."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    users = {"superuser": user_model.objects.create_superuser("root", password="root-pass-123")}
    for name, codename in (("changer", "change_invite_code"), ("viewer", "view_invite_code"), ("plain", None)):
        user = user_model.objects.create_user(name, password=f"{name}-pass-123", is_staff=True)
        if codename:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="invites", codename=codename))
        users[name] = user
    return users


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures (the browser's screenshot) see failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- an endpoint that answers, but is not DynamoDB ------------------------------------------------


class _NotDynamo(http.server.BaseHTTPRequestHandler):
    """A web server that is not DynamoDB: an HTML page for everything (status from the path's server)."""

    status = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
        self.send_response(self.server.status)  # type: ignore[attr-defined]  # set by web_server_not_dynamodb
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(params=[200, 404, 501])
def web_server_not_dynamodb(request: pytest.FixtureRequest) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotDynamo)
    server.status = request.param  # type: ignore[attr-defined]  # read by the handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
