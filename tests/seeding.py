"""Many legacy spaces at once (BatchWriteItem), for tests that need a table with some pages."""

from __future__ import annotations

import uuid

from devtools.demo import LEGACY_TIMESTAMP
from spaces import keys
from spaces.dynamodb import botocore_client, table_name


def seed_legacy_spaces(count: int, *, name_prefix: str = "Legacy") -> list[str]:
    """``count`` spaces as the earlier system left them, without codes or members."""
    client = botocore_client()
    table = table_name()
    space_ids = [uuid.uuid4().hex[:12] for _ in range(count)]
    requests = [
        {
            "PutRequest": {
                "Item": {
                    "PK": {"S": keys.space_pk(space_id)},
                    "SK": {"S": keys.SPACE_METADATA_SK},
                    "id": {"S": space_id},
                    "name": {"S": f"{name_prefix} {n}"},
                    "owner_id": {"S": "legacy-owner"},
                    "created_at": {"S": LEGACY_TIMESTAMP},
                }
            }
        }
        for n, space_id in enumerate(space_ids)
    ]
    for start in range(0, len(requests), 25):
        pending = {table: requests[start : start + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return space_ids
