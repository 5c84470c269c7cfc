"""PynamoDB models: the single table's item layout, stated once (no business logic: that lives in the services).
Attribute names are those the earlier system wrote (the guide), so its tables keep working."""

from datetime import UTC, datetime
from typing import Any, Self

from pynamodb.attributes import BooleanAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from spaces import keys
from spaces.dynamodb import TableItem

ROLE_OWNER = "owner"
ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"
ROLE_VIEWER = "viewer"
ROLES = (ROLE_OWNER, ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER)
ROLES_OWNERS_GIVE = (ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER)
ROLES_CODES_GRANT = (ROLE_MEMBER, ROLE_VIEWER)
ROLES_THAT_MANAGE_INVITES = frozenset({ROLE_OWNER, ROLE_ADMIN})
DEFAULT_SPACE_TYPE = "workspace"  # what a space without a ``type`` is (the earlier system's items may lack one)


def utc_now_iso() -> str:
    """Timestamps are ISO 8601 strings in UTC, as the earlier system wrote them."""
    return datetime.now(UTC).isoformat()


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
    metadata: MapAttribute[str, Any] = MapAttribute(null=True)
    # Ours: kept by the same transactions that add and remove memberships, so showing
    # it costs no Query. Spaces the earlier system wrote lack it until their first join.
    member_count = NumberAttribute(null=True)
    # Ours, all optional: the policy of the space's one code (absent: the guide's code that
    # never expires). Set by a regeneration or a policy change, reset by the next regeneration.
    invite_expires_at = NumberAttribute(null=True)  # epoch seconds
    invite_max_uses = NumberAttribute(null=True)
    invite_uses = NumberAttribute(null=True)  # joins with the code, counted while it has a limit
    invite_paused = BooleanAttribute(null=True)
    invite_role = UnicodeAttribute(null=True)  # the role the code grants; absent: member
    # Who set the code: the user who regenerated it, else the source that assigned it (provenance of joins).
    invite_set_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, space_id: str) -> tuple[str, str]:
        return keys.space_pk(space_id), keys.SPACE_METADATA_SK

    @classmethod
    def build(cls, space_id: str, **attributes: Any) -> Self:
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
    # Ours: how a join came in (the code, and who set it); absent for other memberships and older joins.
    joined_with = UnicodeAttribute(null=True)
    code_set_by = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute(attr_name="GSI1PK", null=True)
    gsi1sk = UnicodeAttribute(attr_name="GSI1SK", null=True)

    by_user = UserSpacesIndex()

    @classmethod
    def key(cls, space_id: str, user_id: str) -> tuple[str, str]:
        return keys.space_pk(space_id), keys.member_sk(user_id)

    @classmethod
    def build(cls, space_id: str, user_id: str, role: str, joined_at: str) -> Self:
        pk, sk = cls.key(space_id, user_id)
        gsi1pk, gsi1sk = keys.user_gsi1pk(user_id), keys.space_pk(space_id)
        return cls(pk, sk, user_id=user_id, role=role, joined_at=joined_at, gsi1pk=gsi1pk, gsi1sk=gsi1sk)

    @property
    def space_id(self) -> str:
        return keys.strip_prefix(self.pk, keys.SPACE_PREFIX)


class Block(TableItem):
    """``SPACE#<space_id> / BLOCK#<user_id>``: a user who may not join the space (no GSI1: not a membership)."""

    user_id = UnicodeAttribute()
    blocked_at = UnicodeAttribute(null=True)
    blocked_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, space_id: str, user_id: str) -> tuple[str, str]:
        return keys.space_pk(space_id), keys.block_sk(user_id)

    @classmethod
    def build(cls, space_id: str, user_id: str, blocked_by: str | None) -> Self:
        pk, sk = cls.key(space_id, user_id)
        return cls(pk, sk, user_id=user_id, blocked_at=utc_now_iso(), blocked_by=blocked_by)


class InviteMapping(TableItem):
    """``INVITE#<code> / SPACE#<space_id>``: the guide's lookup item, kept for its readers."""

    space_id = UnicodeAttribute()
    created_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, code: str, space_id: str) -> tuple[str, str]:
        return keys.invite_pk(code), keys.invite_sk(space_id)

    @classmethod
    def build(cls, code: str, space_id: str, created_at: str) -> Self:
        pk, sk = cls.key(code, space_id)
        return cls(pk, sk, space_id=space_id, created_at=created_at)

    @property
    def code(self) -> str:
        return keys.strip_prefix(self.pk, keys.INVITE_PREFIX)


class CodeClaim(TableItem):
    """``CODE#<CODE> / CLAIM``: who holds a code; put only if absent and never deleted, so no code is issued twice."""

    space_id = UnicodeAttribute()
    code = UnicodeAttribute()  # exactly as the space stores it (legacy codes keep their case)
    created_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, code: str) -> tuple[str, str]:
        return keys.code_claim_pk(code), keys.CODE_CLAIM_SK

    @classmethod
    def build(cls, code: str, space_id: str, created_at: str) -> Self:
        pk, sk = cls.key(code)
        return cls(pk, sk, space_id=space_id, code=code, created_at=created_at)


class TableFlag(TableItem):
    """``TABLEFLAG#<name> / FLAG``: a fact about the whole table, set once."""

    set_at = UnicodeAttribute(null=True)
    set_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, name: str) -> tuple[str, str]:
        return keys.table_flag_pk(name), keys.TABLE_FLAG_SK
