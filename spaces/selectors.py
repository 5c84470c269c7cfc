"""Reads of spaces and memberships. Hot paths use GetItem/BatchGetItem."""

from pynamodb.exceptions import DoesNotExist

from spaces import keys
from spaces.dynamodb import get_many, translate_unreachable
from spaces.exceptions import SpaceNotFound
from spaces.models import Membership, Space


def space_with_membership(*, space_id: str, user_id: str | None) -> tuple[Space, Membership | None]:
    """The space and the user's membership in it: one strongly consistent round trip."""
    space_key = Space.key(space_id)
    member_key = Membership.key(space_id, user_id) if user_id else None
    with translate_unreachable():
        found = get_many([space_key, member_key] if member_key else [space_key])
    raw_space = found.get(space_key)
    if raw_space is None:
        raise SpaceNotFound(space_id)
    raw_member = found.get(member_key) if member_key else None
    return Space.from_raw_data(raw_space), Membership.from_raw_data(raw_member) if raw_member else None


def space_get(*, space_id: str) -> Space:
    """The space, strongly consistent (as a write about to use it needs); :class:`SpaceNotFound` if it is gone."""
    with translate_unreachable():
        try:
            return Space.get(*Space.key(space_id), consistent_read=True)
        except DoesNotExist:
            raise SpaceNotFound(space_id) from None


def space_member_count(*, space: Space) -> int:
    """The count the engine keeps on the space; a space the earlier system wrote is counted (a Query)."""
    if space.member_count is not None:
        return int(space.member_count)
    return space_members_counted(space_id=space.id)


def space_members_counted(*, space_id: str) -> int:
    """The space's membership items, counted (a Query of its partition)."""
    with translate_unreachable():
        return Membership.count(
            keys.space_pk(space_id), range_key_condition=Membership.sk.startswith(keys.MEMBER_PREFIX)
        )


def space_members(*, space_id: str) -> list[Membership]:
    with translate_unreachable():
        return list(
            Membership.query(keys.space_pk(space_id), range_key_condition=Membership.sk.startswith(keys.MEMBER_PREFIX))
        )


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

    One Query for ``limit + 1`` memberships (the extra one says whether there is a next page) and one
    BatchGet; memberships without a space item are skipped, so a page may hold fewer than ``limit``.
    """
    start_key = None
    if after_space_id is not None:
        start_key = {
            "PK": {"S": keys.space_pk(after_space_id)},
            "SK": {"S": keys.member_sk(user_id)},
            "GSI1PK": {"S": keys.user_gsi1pk(user_id)},
            "GSI1SK": {"S": keys.space_pk(after_space_id)},
        }
    with translate_unreachable():
        memberships = list(
            Membership.by_user.query(
                keys.user_gsi1pk(user_id),
                scan_index_forward=False,
                limit=limit + 1,
                last_evaluated_key=start_key,
            )
        )
    has_more = len(memberships) > limit
    memberships = memberships[:limit]
    spaces = spaces_by_id([membership.space_id for membership in memberships]) if memberships else {}
    page = [(spaces[m.space_id], m) for m in memberships if m.space_id in spaces]
    next_after = memberships[-1].space_id if has_more else None
    return page, next_after
