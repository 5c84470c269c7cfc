"""The commands' pre-flight probe of the table: an endpoint that is not DynamoDB is refused by every command."""

from __future__ import annotations

import subprocess
import sys

from tests.test_backfill_hardening import REPO_ROOT, manage_py_env


def test_the_audit_refuses_a_web_server_that_is_not_dynamodb(dynamo_table, web_server_not_dynamodb) -> None:
    result = subprocess.run(  # our own interpreter and manage.py
        [sys.executable, "manage.py", "audit_invite_codes"],
        cwd=REPO_ROOT,
        env=manage_py_env(DYNAMODB_HOST=web_server_not_dynamodb),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"CommandError: the endpoint {web_server_not_dynamodb} answered, but not as DynamoDB does; "
        "is DYNAMODB_HOST pointing at DynamoDB?"
    )
    assert "No problems found" not in result.stdout
