"""Settings, the user model, and the set-up commands (create_dynamodb_table, seed_demo)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from devtools.embedded_dynamodb import free_port
from invites import codes
from spaces.dynamodb import botocore_client, table_name
from spaces.models import Space
from tests.invariants import scan_all

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DYNAMODB_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base_env, "DJANGO_SETTINGS_MODULE": "lifestyle_spaces.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.django_db
def test_user_ids_are_random_uuids() -> None:
    user = get_user_model().objects.create_user(username="someone", password="a-long-password-1")
    assert isinstance(user.pk, uuid.UUID)
    assert user.pk.version == 4


def test_production_settings_refuse_to_start_without_a_real_secret_key() -> None:
    result = run_manage("check", env={"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "short"})

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_start_with_a_real_secret_key() -> None:
    key = "k" * 20 + uuid.uuid4().hex + uuid.uuid4().hex
    result = run_manage("check", env={"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": key})

    assert result.returncode == 0, result.stderr


def test_create_table_command_creates_the_table_with_its_index_once(moto_server, connect_with) -> None:
    table_name = f"cmd-{uuid.uuid4().hex[:8]}"
    connect_with(DYNAMODB_TABLE=table_name, DYNAMODB_HOST=moto_server.endpoint_url)
    first, second = StringIO(), StringIO()

    call_command("create_dynamodb_table", stdout=first)
    call_command("create_dynamodb_table", stdout=second)

    assert "Created table" in first.getvalue()
    assert "already exists" in second.getvalue()
    table = botocore_client().describe_table(TableName=table_name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "GSI1"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["GSI1PK", "GSI1SK"]
    botocore_client().delete_table(TableName=table_name)


def test_create_table_command_reports_an_unreachable_endpoint_in_one_line() -> None:
    result = run_manage(
        "create_dynamodb_table",
        env={
            "DJANGO_DEBUG": "1",
            "DYNAMODB_HOST": f"http://127.0.0.1:{free_port()}",
            "DYNAMODB_MAX_ATTEMPTS": "2",
        },
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot be reached" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_seed_demo_refuses_anything_but_the_embedded_dynamodb(connect_with) -> None:
    connect_with(DYNAMODB_HOST=None)

    with pytest.raises(CommandError, match="embedded DynamoDB"):
        call_command("seed_demo")


@pytest.mark.django_db
def test_seed_demo_creates_users_current_and_legacy_spaces(dynamo_table, settings) -> None:
    out = StringIO()

    call_command("seed_demo", stdout=out)

    assert set(get_user_model().objects.values_list("username", flat=True)) == {"admin", "alice", "bob"}
    spaces = [Space.from_raw_data(raw) for raw in _raw_spaces()]
    with_new_codes = [s for s in spaces if s.invite_code and codes.is_new_format(s.invite_code)]
    without_code = [s for s in spaces if not s.invite_code]
    legacy_hex = [s for s in spaces if s.invite_code and re.fullmatch("[0-9a-f]{8}", s.invite_code)]
    assert (len(with_new_codes), len(without_code), len(legacy_hex)) == (3, 4, 2)
    # Legacy codes are on the table: the flag that would skip their check is gone.
    assert [item["PK"] for item in scan_all() if item["PK"].startswith("TABLEFLAG#")] == ["TABLEFLAG#demo-seeded"]


@pytest.mark.django_db
def test_seed_demo_on_a_table_that_holds_the_demo_adds_nothing_and_gives_the_users_the_same_ids(dynamo_table) -> None:
    first, second = StringIO(), StringIO()
    call_command("seed_demo", stdout=first)
    items_after_first = sorted((i["PK"], i["SK"]) for i in scan_all())
    users_after_first = sorted(get_user_model().objects.values_list("username", "id"))
    with connection.cursor() as cursor:  # a fresh relational database beside the kept table (no delete signals)
        cursor.execute(f"DELETE FROM {get_user_model()._meta.db_table}")

    call_command("seed_demo", stdout=second)

    assert sorted((i["PK"], i["SK"]) for i in scan_all()) == items_after_first
    assert sorted(get_user_model().objects.values_list("username", "id")) == users_after_first
    assert "already there" in second.getvalue()
    assert first.getvalue().splitlines()[-1] == second.getvalue().splitlines()[-1]  # the same walk-through space


@pytest.mark.django_db
def test_the_demo_walk_through_works_regenerate_as_alice_join_as_bob(dynamo_table, api_client) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    space_id = out.getvalue().splitlines()[-1].removeprefix("walkthrough space: ")

    def token(username: str) -> str:
        answer = api_client.post(
            "/api/auth/token/", {"username": username, "password": f"{username}-demo-pass"}, format="json"
        )
        return answer.json()["access"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token('alice')}")
    code = api_client.post(f"/api/spaces/{space_id}/invite").json()["invite_code"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token('bob')}")
    joined = api_client.post("/api/spaces/join", {"invite_code": code}, format="json")

    assert joined.status_code == 200
    assert joined.json()["spaceId"] == space_id


def _raw_spaces() -> list[dict[str, object]]:
    client = botocore_client()
    page = client.scan(TableName=table_name())
    return [raw for raw in page["Items"] if raw["SK"]["S"] == "METADATA"]
