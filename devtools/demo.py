"""Demo data for the embedded mode, including items as the earlier system left them.

The ``put_legacy_*`` helpers write items exactly as the earlier system did
(the guide's layout), bypassing our engine on purpose: they reproduce the
data the backfill and the audit exist to fix. Only ``seed_demo`` (embedded
DynamoDB only) and tests that reproduce legacy data call them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from spaces import keys
from spaces.dynamodb import botocore_client, table_name

LEGACY_TIMESTAMP = "2024-01-15T10:30:00"


def _put(item: dict[str, Any]) -> None:
    serialized: dict[str, dict[str, Any]] = {}
    for name, value in item.items():
        if isinstance(value, bool):
            serialized[name] = {"BOOL": value}
        else:
            serialized[name] = {"S": str(value)}
    botocore_client().put_item(TableName=table_name(), Item=serialized)


def put_legacy_space(
    *,
    space_id: str | None = None,
    name: str = "Legacy space",
    owner_id: str = "legacy-owner",
    invite_code: str | None = None,
    with_mapping: bool = True,
    with_owner_membership: bool = True,
) -> str:
    space_id = space_id or uuid.uuid4().hex[:12]
    item: dict[str, Any] = {
        "PK": keys.space_pk(space_id),
        "SK": keys.SPACE_METADATA_SK,
        "id": space_id,
        "name": name,
        "description": "",
        "type": "workspace",
        "is_public": False,
        "owner_id": owner_id,
        "created_at": LEGACY_TIMESTAMP,
        "updated_at": LEGACY_TIMESTAMP,
    }
    if invite_code is not None:
        item["invite_code"] = invite_code
        if with_mapping:
            put_legacy_mapping(code=invite_code, space_id=space_id)
    _put(item)
    if with_owner_membership:
        put_legacy_membership(space_id=space_id, user_id=owner_id, role="owner")
    return space_id


def put_legacy_mapping(*, code: str, space_id: str) -> None:
    _put(
        {
            "PK": keys.invite_pk(code),
            "SK": keys.invite_sk(space_id),
            "space_id": space_id,
            "created_at": LEGACY_TIMESTAMP,
        }
    )


def put_legacy_membership(*, space_id: str, user_id: str, role: str) -> None:
    _put(
        {
            "PK": keys.space_pk(space_id),
            "SK": keys.member_sk(user_id),
            "user_id": user_id,
            "role": role,
            "joined_at": LEGACY_TIMESTAMP,
            "GSI1PK": keys.user_gsi1pk(user_id),
            "GSI1SK": keys.space_pk(space_id),
        }
    )


DEMO_USERS = (
    # username, password, is_superuser, id: fixed, so a fresh relational database matches a table that kept the demo
    ("admin", "admin", True, uuid.UUID("00000000-0000-4000-8000-00000000000a")),
    ("alice", "alice-demo-pass", False, uuid.UUID("00000000-0000-4000-8000-0000000a11ce")),
    ("bob", "bob-demo-pass", False, uuid.UUID("00000000-0000-4000-8000-000000000b0b")),
)


def legacy_hex_code() -> str:
    """A code as the earlier system's hex generator wrote them (lower case; the
    leading letter keeps it from being all digits, which could look new-format)."""
    import secrets

    return secrets.choice("abcdef") + secrets.token_hex(4)[:7]


DEMO_SEEDED_FLAG = "demo-seeded"


@dataclass(frozen=True)
class DemoSeed:
    """What the demo holds; ``walkthrough_space_id`` is Alice's space that Bob is not in yet."""

    created: bool
    walkthrough_space_id: str
    counts: dict[str, int]


def seed_demo() -> DemoSeed:
    """Users, current spaces with codes and members, legacy spaces without or with old codes. Idempotent.

    The users are created if missing, with their fixed ids; the spaces only on a table the demo
    has not seeded yet (a table flag records it), so a second run adds nothing.
    """
    from django.contrib.auth import get_user_model

    from spaces.table import table_flag_is_set

    users = {}
    for username, password, is_superuser, user_id in DEMO_USERS:
        flags = {"is_staff": is_superuser, "is_superuser": is_superuser}
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"id": user_id, **flags})
        if created:
            user.set_password(password)
            user.save()
        users[username] = str(user.id)
    if table_flag_is_set(DEMO_SEEDED_FLAG):
        return DemoSeed(created=False, walkthrough_space_id=_walkthrough_space_id(users["alice"]), counts={})
    return _seed_spaces(users)


def _walkthrough_space_id(alice: str) -> str:
    from spaces.selectors import spaces_of_user

    page, _ = spaces_of_user(user_id=alice, limit=100)
    return next(space.id for space, _membership in page if space.name == WALKTHROUGH_SPACE)


WALKTHROUGH_SPACE = "Book Circle"


def _seed_spaces(users: dict[str, str]) -> DemoSeed:
    from invites.joining import space_join_with_code
    from invites.services import LEGACY_CODES_RECORDED, space_create
    from spaces.models import TableFlag
    from spaces.services import space_membership_add
    from spaces.table import table_flag_set

    current = [
        space_create(
            owner_id=users["alice"], name="Alice's Garden Club", description="Seeds and swaps", is_public=True
        ),
        # Bob is not in this one: "regenerate as Alice, join as Bob" works on it.
        space_create(owner_id=users["alice"], name=WALKTHROUGH_SPACE, description="One book a month"),
        space_create(owner_id=users["bob"], name="Running Crew", space_type="team"),
    ]
    space_join_with_code(typed_code=current[0].invite_code or "", user_id=users["bob"])
    space_join_with_code(typed_code=current[2].invite_code or "", user_id=users["alice"])
    space_membership_add(space_id=current[2].id, user_id=users["admin"], role="admin")
    legacy_without_code = [
        put_legacy_space(name=name, owner_id=users[owner])
        for name, owner in (
            ("My Workspace", "alice"),
            ("Team Hub", "bob"),
            ("Family Recipes", "alice"),
            ("Old Photo Club", "bob"),
        )
    ]
    legacy_with_old_codes = [
        put_legacy_space(name=name, owner_id=users["bob"], invite_code=legacy_hex_code())
        for name in ("Chess Night", "Climbing Partners")
    ]
    # The table now holds codes the engine has not claimed: until a backfill or
    # an audit repair records them, new codes are checked against INVITE#.
    TableFlag(*TableFlag.key(LEGACY_CODES_RECORDED)).delete()
    table_flag_set(DEMO_SEEDED_FLAG, by="seed_demo")
    counts = {
        "users": len(users),
        "current_spaces": len(current),
        "legacy_without_code": len(legacy_without_code),
        "legacy_with_old_codes": len(legacy_with_old_codes),
    }
    return DemoSeed(created=True, walkthrough_space_id=current[1].id, counts=counts)
