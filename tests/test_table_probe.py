"""The commands' pre-flight probe of the table: an endpoint that is not DynamoDB is refused by every command."""

from __future__ import annotations

import subprocess
import sys

from spaces.dynamodb import TableBinding
from tests.test_backfill_hardening import REPO_ROOT, assert_one_line_status_two, manage_py_env


def test_the_audit_refuses_a_web_server_that_is_not_dynamodb(
    dynamo_table: TableBinding, web_server_not_dynamodb
) -> None:
    not_dynamo = TableBinding(**{**dynamo_table.__dict__, "host": web_server_not_dynamodb})

    result = subprocess.run(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "audit_invite_codes"],
        cwd=REPO_ROOT,
        env=manage_py_env(not_dynamo),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert_one_line_status_two(
        result,
        f"CommandError: the endpoint {web_server_not_dynamodb} answered, but not as DynamoDB does; "
        "is DYNAMODB_HOST pointing at DynamoDB?",
    )
    assert "No problems found" not in result.stdout
