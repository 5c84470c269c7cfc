"""Writes to memberships: each one a transaction that keeps the space's member count.

Creating a space and joining it with a code are invite-code operations and
live in the engine (:mod:`invites.services`); the count is kept the same way
there.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from spaces import keys
from spaces.dynamodb import translate_unreachable
from spaces.exceptions import AlreadyMember, SpaceNotFound
from spaces.models import ROLES, Membership, Space, utc_now_iso
from spaces.transactions import Transaction, TransactionCancelled

MAX_ATTEMPTS = 8


def _space(space_id: str) -> Space:
    try:
        return Space.get(*Space.key(space_id), consistent_read=True)
    except DoesNotExist:
        raise SpaceNotFound(space_id) from None


def _counted(space_id: str) -> int:
    return Membership.count(keys.space_pk(space_id), range_key_condition=Membership.sk.startswith(keys.MEMBER_PREFIX))


def space_membership_add(*, space_id: str, user_id: str, role: str) -> Membership:
    """Add ``user_id`` to the space with ``role``; raises :class:`AlreadyMember` if they are in it."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    membership = Membership.build(space_id, user_id, role, utc_now_iso())
    with translate_unreachable():
        space = _space(space_id)
        for _attempt in range(MAX_ATTEMPTS):
            tx = Transaction()
            tx.put("membership", membership, condition=Membership.pk.does_not_exist())
            if space.member_count is None:
                count = Space.member_count.set(_counted(space_id) + 1)
                count_condition = Space.member_count.does_not_exist()
            else:
                count = Space.member_count.add(1)
                count_condition = Space.member_count.exists()
            tx.update(
                "space",
                Space(*Space.key(space_id)),
                [count],
                condition=Space.pk.exists() & count_condition,
                return_old_on_failure=True,
            )
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("membership"):
                    raise AlreadyMember() from None
                raw = cancelled.old_item("space")
                if raw is None:
                    raise SpaceNotFound(space_id) from None
                space = Space.from_raw_data(raw)  # someone stored the count first: add to it
                continue
            return membership
    raise RuntimeError(f"space {space_id} kept changing")


def space_membership_remove(*, space_id: str, user_id: str) -> bool:
    """Remove the membership if there is one, and count it out; True when one was removed."""
    with translate_unreachable():
        for _attempt in range(MAX_ATTEMPTS):
            try:
                counted = Space.get(*Space.key(space_id), consistent_read=True).member_count is not None
            except DoesNotExist:
                counted = False
            tx = Transaction()
            tx.delete("membership", Membership(*Membership.key(space_id, user_id)), condition=Membership.pk.exists())
            space = Space(*Space.key(space_id))
            if counted:
                tx.update("space", space, [Space.member_count.add(-1)], condition=Space.member_count.exists())
            else:
                # No count to keep (a space the earlier system wrote, or one that is gone),
                # as long as nobody stores one meanwhile.
                tx.check("space", space, Space.member_count.does_not_exist())
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("membership"):
                    return False
                continue
            return True
    raise RuntimeError(f"space {space_id} kept changing")
