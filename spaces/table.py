"""Creating the single table (PK/SK, GSI1, on-demand billing)."""

from __future__ import annotations

import time

from pynamodb.exceptions import DoesNotExist

from spaces import keys
from spaces.dynamodb import (
    DynamoUnavailable,
    botocore_client,
    current_binding,
    is_unreachable,
    short_reason,
    translate_unreachable,
)
from spaces.models import TableFlag, table_schema, utc_now_iso

TABLE_ACTIVE_TIMEOUT_SECONDS = 120


def table_create_if_missing() -> bool:
    """Create the table unless it exists; wait until ACTIVE. True if it was created.

    A table created here has no legacy codes: the flag that says every code
    has a claim is set at once, so the engine skips the legacy collision check.
    """
    client = botocore_client()
    table_name = current_binding().table_name
    try:
        try:
            client.describe_table(TableName=table_name)
            created = False
        except client.exceptions.ResourceNotFoundException:
            client.create_table(**table_definition(table_name))
            created = True
        deadline = time.monotonic() + TABLE_ACTIVE_TIMEOUT_SECONDS
        while client.describe_table(TableName=table_name)["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise DynamoUnavailable(f"table {table_name!r} did not become ACTIVE in time")
            time.sleep(1)
        if created:
            table_flag_set(keys.LEGACY_CODES_RECORDED_FLAG, by="create_dynamodb_table")
        return created
    except DynamoUnavailable:
        raise
    except Exception as exc:
        if is_unreachable(exc):
            where = current_binding().host or f"AWS {current_binding().region}"
            raise DynamoUnavailable(f"DynamoDB at {where} cannot be reached: {short_reason(exc)}") from exc
        raise


def table_definition(table_name: str) -> dict[str, object]:
    """CreateTable's arguments: the models' schema, billed on demand."""
    return {**table_schema(table_name), "BillingMode": "PAY_PER_REQUEST"}


def table_flag_set(name: str, *, by: str) -> None:
    """Record a fact about the whole table (``TABLEFLAG#<name>``); flags are never unset."""
    pk, sk = TableFlag.key(name)
    with translate_unreachable():
        TableFlag(pk, sk, set_at=utc_now_iso(), set_by=by).save()


def table_flag_is_set(name: str) -> bool:
    with translate_unreachable():
        try:
            TableFlag.get(*TableFlag.key(name), consistent_read=True)
        except DoesNotExist:
            return False
    return True
