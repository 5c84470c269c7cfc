"""Creating the single table, and the facts recorded about it (``TABLEFLAG#``)."""

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from spaces import keys
from spaces.dynamodb import translate_unreachable
from spaces.models import Membership, TableFlag, utc_now_iso


def table_create_if_missing() -> bool:
    """Create the table (PK/SK, GSI1, on demand) unless it exists and wait until ACTIVE; True if created.

    A table made here has no legacy codes, so the flag that says so is set at once.
    """
    with translate_unreachable():
        if Membership.exists():  # the model that carries GSI1 states the whole table
            return False
        try:
            Membership.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
        except PynamoDBException as exc:
            if "ResourceInUseException" not in str(exc):  # another process created it meanwhile
                raise
            return False
        table_flag_set(keys.LEGACY_CODES_RECORDED_FLAG, by="create_dynamodb_table")
        return True


def table_flag_set(name: str, *, by: str) -> None:
    """Record a fact about the whole table; flags are never unset."""
    with translate_unreachable():
        TableFlag(*TableFlag.key(name), set_at=utc_now_iso(), set_by=by).save()


def table_flag_is_set(name: str) -> bool:
    with translate_unreachable():
        try:
            TableFlag.get(*TableFlag.key(name), consistent_read=True)
        except DoesNotExist:
            return False
    return True
