"""What DescribeTable says before a run: that the endpoint is DynamoDB at all, and about how big the table is.

``ItemCount`` is DynamoDB's estimate of the table's items of every kind
(spaces, memberships, mappings, claims), refreshed about every six hours: it
bounds the progress bar's total, which the bar then scales by the share of
spaces among the items the scan has read so far.
"""

from __future__ import annotations

from typing import Any

from spaces.dynamodb import DynamoUnavailable, botocore_client, current_binding, error_code, is_unreachable

# DescribeTable may simply not be in the caller's IAM policy: the run goes on without an estimate.
NOT_ALLOWED = frozenset({"AccessDeniedException", "ThrottlingException", "LimitExceededException"})


def table_item_count() -> int | None:
    """DescribeTable's ``ItemCount``; None when DescribeTable is not allowed.

    Raises :class:`DynamoUnavailable` when the endpoint answers, but not as
    DynamoDB does: a web server that is not DynamoDB answers with HTML, which
    botocore reads as an empty description (a 200) or as an error named by
    its HTTP status (a 404 or 501), and a run against it must stop before it
    reads or writes anything.
    """
    binding = current_binding()
    where = binding.host or f"AWS {binding.region}"
    not_dynamodb = DynamoUnavailable(
        f"the endpoint {where} answered, but not as DynamoDB does; is DYNAMODB_HOST pointing at DynamoDB?"
    )
    try:
        answer: dict[str, Any] = botocore_client().describe_table(TableName=binding.table_name)
    except Exception as exc:
        code = error_code(exc)
        if code in NOT_ALLOWED:
            return None
        if code is not None and code.isdigit():
            raise not_dynamodb from exc
        if is_unreachable(exc):
            raise DynamoUnavailable(f"DynamoDB table {binding.table_name!r} at {where} cannot be reached") from exc
        if code is None:
            raise not_dynamodb from exc
        raise DynamoUnavailable(f"DynamoDB table {binding.table_name!r} at {where}: DescribeTable said {code}") from exc
    table = answer.get("Table")
    if not isinstance(table, dict) or table.get("TableName") != binding.table_name:
        raise not_dynamodb
    count = table.get("ItemCount")
    return int(count) if isinstance(count, int) else None
