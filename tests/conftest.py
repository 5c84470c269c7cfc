"""Fixtures: one moto server per test process, a fresh DynamoDB table per test."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devtools import embedded_dynamodb
from spaces import dynamodb


@pytest.fixture(scope="session")
def moto_server() -> Iterator[embedded_dynamodb.EmbeddedDynamo]:
    server = embedded_dynamodb.start()
    yield server
    server.stop()


def _bind_fresh_table(server: embedded_dynamodb.EmbeddedDynamo, *, legacy: bool) -> dynamodb.TableBinding:
    from invites.services import forget_cached_table_facts
    from spaces.table import table_create_if_missing

    binding = dynamodb.bind_table(table_name=f"test-{uuid.uuid4().hex[:12]}", host=server.endpoint_url)
    forget_cached_table_facts()
    table_create_if_missing()
    if legacy:
        from invites.services import LEGACY_CODES_RECORDED
        from spaces.models import TableFlag

        TableFlag(*TableFlag.key(LEGACY_CODES_RECORDED)).delete()
        forget_cached_table_facts()
    return binding


def _drop_table(binding: dynamodb.TableBinding) -> None:
    dynamodb.botocore_client().delete_table(TableName=binding.table_name)


@pytest.fixture
def dynamo_table(moto_server: embedded_dynamodb.EmbeddedDynamo, settings: Any) -> Iterator[dynamodb.TableBinding]:
    """A new, empty table created by our own command logic (legacy codes recorded)."""
    binding = _bind_fresh_table(moto_server, legacy=False)
    settings.DYNAMODB_TABLE = binding.table_name
    settings.DYNAMODB_HOST = binding.host
    yield binding
    _drop_table(binding)


@pytest.fixture
def legacy_table(moto_server: embedded_dynamodb.EmbeddedDynamo, settings: Any) -> Iterator[dynamodb.TableBinding]:
    """A table as the earlier system left it: no record that legacy codes were claimed."""
    binding = _bind_fresh_table(moto_server, legacy=True)
    settings.DYNAMODB_TABLE = binding.table_name
    settings.DYNAMODB_HOST = binding.host
    yield binding
    _drop_table(binding)


class CallCounter:
    """Counts DynamoDB API calls (not HTTP retries) made through the shared client."""

    READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable"})

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

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


@pytest.fixture
def dynamo_calls() -> Iterator[CallCounter]:
    counter = CallCounter()
    dynamodb.add_client_hook("before-call.dynamodb", counter)
    yield counter
    dynamodb.remove_client_hook("before-call.dynamodb", counter)


# --- REST API ---------------------------------------------------------------------------


@pytest.fixture
def api_client() -> Iterator[Any]:
    """A DRF test client; throttle counters (in the cache) start from zero."""
    from django.core.cache import cache
    from rest_framework.test import APIClient

    cache.clear()
    yield APIClient()
    cache.clear()


@pytest.fixture
def space_people(dynamo_table: dynamodb.TableBinding) -> Any:
    """A private space with an owner, an admin, a member and a viewer, and an outsider."""
    from tests.api_support import people_in_a_space

    return people_in_a_space()


@pytest.fixture
def failing_dynamo_operation(dynamo_table: dynamodb.TableBinding) -> Iterator[Any]:
    """``fail(operation, code, message)``: that DynamoDB operation answers with an error from now on."""
    from types import SimpleNamespace

    installed: list[tuple[str, Any]] = []

    def fail(operation: str, code: str, message: str) -> None:
        def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
            parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 500}}
            return SimpleNamespace(status_code=500, headers={}), parsed

        event = f"before-call.dynamodb.{operation}"
        dynamodb.add_client_hook(event, answer)
        installed.append((event, answer))

    yield fail
    for event, answer in installed:
        dynamodb.remove_client_hook(event, answer)


@pytest.fixture
def dynamo_down(dynamo_table: dynamodb.TableBinding) -> Iterator[None]:
    """DynamoDB cannot be reached (a closed port); the test's table is back afterwards."""
    down = embedded_dynamodb.free_port()
    dynamodb.bind_table(dynamo_table.__class__(**{**dynamo_table.__dict__, "host": f"http://127.0.0.1:{down}"}))
    yield
    dynamodb.bind_table(dynamo_table)


# --- admin (issue 5): users with and without the invite-code permissions --------------------------


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


@pytest.fixture
def unreachable_dynamo(dynamo_table: dynamodb.TableBinding) -> Iterator[None]:
    """Point the models at a closed port on 127.0.0.1 for the test, then back at the table."""
    dynamodb.bind_table(host=f"http://127.0.0.1:{embedded_dynamodb.free_port()}", max_attempts=1)
    yield
    dynamodb.bind_table(binding=dynamo_table)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures (the browser's screenshot) see failures."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report
