"""PynamoDB models: the item layout of the single table is stated here, once.

Attribute names are those the earlier system wrote (see the guide), so its
tables read and write unchanged. The models carry no business logic: the
conditional writes live in the services, next to their reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from spaces import keys
from spaces.dynamodb import table_connection

ROLE_OWNER = "owner"
ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLE_VIEWER = "viewer"
ROLES = (ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER)
ROLES_THAT_MANAGE_INVITES = frozenset({ROLE_OWNER, ROLE_ADMIN})
# What a space without a ``type`` is (the earlier system's items may lack one).
DEFAULT_SPACE_TYPE = "workspace"


def utc_now_iso() -> str:
    """Timestamps are ISO 8601 strings in UTC, as the earlier system wrote them."""
    return datetime.now(UTC).isoformat()


class TableItem(Model):
    """Base of every item model: one table, one shared connection."""

    class Meta:
        table_name = "lifestyle-spaces"  # rebound from settings by spaces.dynamodb

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")

    @classmethod
    def _get_connection(cls) -> TableConnection:
        return table_connection()


class Space(TableItem):
    """``SPACE#<id> / METADATA``."""

    id = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    description = UnicodeAttribute(null=True)
    space_type = UnicodeAttribute(attr_name="type", null=True)
    is_public = BooleanAttribute(null=True)
    owner_id = UnicodeAttribute(null=True)
    invite_code = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    metadata = MapAttribute(null=True)  # type: ignore[var-annotated]
    # Ours: kept by the same transactions that add and remove memberships, so showing
    # it costs no Query. Spaces the earlier system wrote lack it until their first join.
    member_count = NumberAttribute(null=True)
    # Ours, all optional: the policy of the space's one code (absent: the guide's code that
    # never expires). Set by a regeneration or a policy change, reset by the next regeneration.
    invite_expires_at = NumberAttribute(null=True)  # epoch seconds
    invite_max_uses = NumberAttribute(null=True)
    invite_uses = NumberAttribute(null=True)  # joins with the code, counted while it has a limit
    invite_paused = BooleanAttribute(null=True)

    @classmethod
    def key(cls, space_id: str) -> tuple[str, str]:
        return keys.space_pk(space_id), keys.SPACE_METADATA_SK

    @classmethod
    def build(cls, space_id: str, **attributes: Any) -> Space:
        pk, sk = cls.key(space_id)
        return cls(pk, sk, id=space_id, **attributes)


class UserSpacesIndex(GlobalSecondaryIndex["Membership"]):
    """GSI1: a user's memberships, ``USER#<user_id>`` -> ``SPACE#<space_id>``."""

    class Meta:
        index_name = keys.GSI1_NAME
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True, attr_name="GSI1PK")
    gsi1sk = UnicodeAttribute(range_key=True, attr_name="GSI1SK")


class Membership(TableItem):
    """``SPACE#<space_id> / MEMBER#<user_id>``."""

    user_id = UnicodeAttribute()
    role = UnicodeAttribute()
    joined_at = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK", null=True)
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK", null=True)

    by_user = UserSpacesIndex()

    @classmethod
    def key(cls, space_id: str, user_id: str) -> tuple[str, str]:
        return keys.space_pk(space_id), keys.member_sk(user_id)

    @classmethod
    def build(cls, space_id: str, user_id: str, role: str, joined_at: str) -> Membership:
        pk, sk = cls.key(space_id, user_id)
        return cls(
            pk,
            sk,
            user_id=user_id,
            role=role,
            joined_at=joined_at,
            gsi1pk=keys.user_gsi1pk(user_id),
            gsi1sk=keys.space_pk(space_id),
        )

    @property
    def space_id(self) -> str:
        return keys.strip_prefix(self.pk, keys.SPACE_PREFIX)


class InviteMapping(TableItem):
    """``INVITE#<code> / SPACE#<space_id>``: the guide's lookup item, kept for its readers."""

    space_id = UnicodeAttribute()
    created_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, code: str, space_id: str) -> tuple[str, str]:
        return keys.invite_pk(code), keys.invite_sk(space_id)

    @classmethod
    def build(cls, code: str, space_id: str, created_at: str) -> InviteMapping:
        pk, sk = cls.key(code, space_id)
        return cls(pk, sk, space_id=space_id, created_at=created_at)

    @property
    def code(self) -> str:
        return keys.strip_prefix(self.pk, keys.INVITE_PREFIX)


class CodeClaim(TableItem):
    """``CODE#<CODE> / CLAIM``: who holds a code. Written with attribute_not_exists.

    A conditional put on a fixed key per code is what makes codes unique by
    construction. Claims are never deleted, so a code once issued is never
    issued again: an old invite link can never lead into another space.
    """

    space_id = UnicodeAttribute()
    code = UnicodeAttribute()  # exactly as the space stores it (legacy codes keep their case)
    created_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, code: str) -> tuple[str, str]:
        return keys.code_claim_pk(code), keys.CODE_CLAIM_SK

    @classmethod
    def build(cls, code: str, space_id: str, created_at: str) -> CodeClaim:
        pk, sk = cls.key(code)
        return cls(pk, sk, space_id=space_id, code=code, created_at=created_at)


class TableFlag(TableItem):
    """``TABLEFLAG#<name> / FLAG``: a fact about the whole table, set once."""

    set_at = UnicodeAttribute(null=True)
    set_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, name: str) -> tuple[str, str]:
        return keys.table_flag_pk(name), keys.TABLE_FLAG_SK


def table_schema(table_name: str) -> dict[str, Any]:
    """The table as the models state it, in DynamoDB's terms (CreateTable's and DescribeTable's keys).

    Every item model shares ``PK``/``SK``; :class:`Membership` also carries
    ``GSI1``. The table is created from this, and PynamoDB's connection is
    told about the table from it, so the schema is written once: here.
    """
    schema = Membership._get_schema()
    return {
        "TableName": table_name,
        "KeySchema": schema["key_schema"],
        "AttributeDefinitions": schema["attribute_definitions"],
        "GlobalSecondaryIndexes": [
            {"IndexName": index["index_name"], "KeySchema": index["key_schema"], "Projection": index["projection"]}
            for index in schema["global_secondary_indexes"]
        ],
    }


class BackfillRunItem(TableItem):
    """A backfill run's progress, kept in the table so workers on any machine share it.

    ``BACKFILLRUN#<name> / RUN``: the run's shape (``kind``, ``machines`` x
    ``processes`` = ``total_segments``) and how many segments are done (and done
    with failures). ``BACKFILLRUN#<name> / SEGMENT#<i>``: one scan segment's
    position (``pages`` handled, the scan's ``last_evaluated_key`` as JSON,
    ``done``) and its counts. The conditional writes that keep them consistent
    are in ``invites.backfill.run_state``.
    """

    kind = UnicodeAttribute(null=True)
    machines = NumberAttribute(null=True)
    processes = NumberAttribute(null=True)
    total_segments = NumberAttribute(null=True)
    segments_done = NumberAttribute(null=True)
    segments_failed = NumberAttribute(null=True)
    segment = NumberAttribute(null=True)
    pages = NumberAttribute(null=True)
    last_evaluated_key = UnicodeAttribute(null=True)
    done = BooleanAttribute(null=True)
    scanned = NumberAttribute(null=True)
    missing = NumberAttribute(null=True)
    updated = NumberAttribute(null=True)
    skipped = NumberAttribute(null=True)
    failed = NumberAttribute(null=True)
    recorded = NumberAttribute(null=True)
    duplicates = NumberAttribute(null=True)
    worker = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    completed_at = UnicodeAttribute(null=True)

    @classmethod
    def run_key(cls, name: str) -> tuple[str, str]:
        return keys.backfill_run_pk(name), keys.BACKFILL_RUN_SK

    @classmethod
    def segment_key(cls, name: str, segment: int) -> tuple[str, str]:
        return keys.backfill_run_pk(name), keys.backfill_segment_sk(segment)
