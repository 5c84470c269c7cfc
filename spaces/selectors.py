"""Reads of spaces and memberships. Hot paths use GetItem/BatchGetItem."""

from typing import Any

from pynamodb.exceptions import DoesNotExist

from spaces import keys
from spaces.dynamodb import get_many, table_connection, translate_unreachable
from spaces.exceptions import SpaceNotFound
from spaces.models import Block, Membership, Space

MEMBER_ITEMS = Membership.sk.startswith(keys.MEMBER_PREFIX)  # a space's partition holds more than memberships


def space_with_membership(*, space_id: str, user_id: str | None) -> tuple[Space, Membership | None]:
    """The space and the user's membership in it: one strongly consistent round trip."""
    space, members = space_with_memberships(space_id=space_id, user_ids=[user_id] if user_id else [])
    return space, members.get(user_id or "")


def space_with_memberships(*, space_id: str, user_ids: list[str]) -> tuple[Space, dict[str, Membership]]:
    """The space and the memberships of ``user_ids`` that exist, by user id: one strongly consistent round trip."""
    space_key = Space.key(space_id)
    with translate_unreachable():
        found = get_many([space_key, *(Membership.key(space_id, user_id) for user_id in user_ids)])
    raw_space = found.pop(space_key, None)
    if raw_space is None:
        raise SpaceNotFound(space_id)
    members = {
        keys.strip_prefix(sk, keys.MEMBER_PREFIX): Membership.from_raw_data(raw) for (_, sk), raw in found.items()
    }
    return Space.from_raw_data(raw_space), members


def space_get(*, space_id: str) -> Space:
    """The space, strongly consistent (as a write about to use it needs); :class:`SpaceNotFound` if it is gone."""
    with translate_unreachable():
        try:
            return Space.get(*Space.key(space_id), consistent_read=True)
        except DoesNotExist:
            raise SpaceNotFound(space_id) from None


def space_member_count(*, space: Space) -> int:
    """The count the engine keeps on the space; a space the earlier system wrote is counted (a Query)."""
    return int(space.member_count) if space.member_count is not None else space_members_counted(space_id=space.id)


def space_members_counted(*, space_id: str) -> int:
    """The space's membership items, counted (a Query of its partition)."""
    with translate_unreachable():
        return Membership.count(keys.space_pk(space_id), range_key_condition=MEMBER_ITEMS)


def space_members_page(
    *, space_id: str, limit: int, after: str | None = None, code: str | None = None, blocks: bool = False
) -> tuple[list[Any], str | None]:
    """One page of the space's memberships (``blocks``: its blocks) in key order, and the user id to go on after:
    one consistent Query of ``limit + 1`` items. With ``code`` (a filter DynamoDB applies after its Limit), ``limit``
    items are examined: the page may hold fewer, and the last page may be empty."""
    prefix, model = (keys.BLOCK_PREFIX, Block) if blocks else (keys.MEMBER_PREFIX, Membership)
    start = {"PK": {"S": keys.space_pk(space_id)}, "SK": {"S": prefix + after}} if after else None
    with translate_unreachable():
        answer = table_connection().query(
            keys.space_pk(space_id),
            range_key_condition=Membership.sk.startswith(prefix),
            # As stored: new codes in upper case, the earlier system's as they were written.
            filter_condition=Membership.joined_with.is_in(*{code, code.upper(), code.lower()}) if code else None,
            consistent_read=True,
            exclusive_start_key=start,
            limit=limit if code else limit + 1,
        )
    items = [model.from_raw_data(raw) for raw in answer.get("Items", [])]
    if code:
        last = answer.get("LastEvaluatedKey")
        return items, keys.strip_prefix(last["SK"]["S"], prefix) if last else None
    return items[:limit], items[limit - 1].user_id if len(items) > limit else None


def space_members(*, space_id: str) -> list[Membership]:
    members = Membership.query(
        keys.space_pk(space_id), range_key_condition=Membership.sk.startswith(keys.MEMBER_PREFIX)
    )
    with translate_unreachable():
        return list(members)


def spaces_by_id(space_ids: list[str], *, consistent: bool = False) -> dict[str, Space]:
    """Spaces for ids, skipping ids without a space item; ``consistent`` when they are about to be written."""
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in space_ids], consistent=consistent)
    spaces = (Space.from_raw_data(raw) for raw in found.values())
    return {space.id: space for space in spaces}


def memberships_of_user(*, user_id: str) -> list[Membership]:
    """Every membership of the user (GSI1, every page; an index read, so eventually consistent)."""
    with translate_unreachable():
        return list(Membership.by_user.query(keys.user_gsi1pk(user_id)))


def spaces_of_user(
    *, user_id: str, limit: int, after_space_id: str | None = None
) -> tuple[list[tuple[Space, Membership]], str | None]:
    """One page of the user's spaces, newest first (GSI1 in reverse), and the space id to continue after.

    One Query (``limit + 1``: is there a next page) and one BatchGet; memberships without a space are skipped.
    """
    pk, after = keys.user_gsi1pk(user_id), keys.space_pk(after_space_id or "")
    start = {"PK": {"S": after}, "SK": {"S": keys.member_sk(user_id)}, "GSI1PK": {"S": pk}, "GSI1SK": {"S": after}}
    with translate_unreachable():
        query = Membership.by_user.query(
            pk, scan_index_forward=False, limit=limit + 1, last_evaluated_key=start if after_space_id else None
        )
        memberships = list(query)
    next_after = memberships[limit - 1].space_id if len(memberships) > limit else None
    memberships = memberships[:limit]
    spaces = spaces_by_id([membership.space_id for membership in memberships]) if memberships else {}
    return [(spaces[m.space_id], m) for m in memberships if m.space_id in spaces], next_after
