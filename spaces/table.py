"""Creating the single table, and the facts recorded about it (``TABLEFLAG#``)."""

from pynamodb.exceptions import DoesNotExist, PynamoDBException

from spaces import keys
from spaces.dynamodb import translate_unreachable
from spaces.models import Membership, TableFlag, utc_now_iso


def table_create_if_missing() -> bool:
    """Create the table (PK/SK, GSI1, on demand; no legacy codes: flagged so at once) unless it exists, and the
    security table (accounts.security: PK only, TTL on ``expires``) unless it exists; True if the table was made."""
    from accounts.security import SecurityItem

    with translate_unreachable():
        # The model that carries GSI1 states the whole table; the security table's sets its TTL too.
        missing = [model for model in (Membership, SecurityItem) if not model.exists()]
        for model in missing:
            try:
                model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
            except PynamoDBException as exc:
                if "ResourceInUseException" not in str(exc):  # another process created it meanwhile
                    raise
        if Membership in missing:  # new either way: it holds no legacy codes
            table_flag_set(keys.LEGACY_CODES_RECORDED_FLAG, by="create_dynamodb_table")
        return Membership in missing


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
