"""Creating the single table (PK/SK, GSI1, on-demand billing)."""

from __future__ import annotations

import time

from invites.services import mark_legacy_codes_recorded
from spaces import keys
from spaces.dynamodb import DynamoUnavailable, botocore_client, current_binding, is_unreachable, short_reason

TABLE_ACTIVE_TIMEOUT_SECONDS = 120


def table_create_if_missing() -> bool:
    """Create the table unless it exists; wait until ACTIVE. True if it was created.

    A table created here has no legacy codes, so it is marked as recorded
    at once and the engine skips the legacy collision check.
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
            mark_legacy_codes_recorded(by="create_dynamodb_table")
        return created
    except DynamoUnavailable:
        raise
    except Exception as exc:
        if is_unreachable(exc):
            where = current_binding().host or f"AWS {current_binding().region}"
            raise DynamoUnavailable(f"DynamoDB at {where} cannot be reached: {short_reason(exc)}") from exc
        raise


def table_definition(table_name: str) -> dict[str, object]:
    string_attributes = ("PK", "SK", "GSI1PK", "GSI1SK")
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in string_attributes],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": keys.GSI1_NAME,
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
