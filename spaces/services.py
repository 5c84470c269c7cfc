"""Writes to memberships: each one a transaction that keeps the space's member count (the engine's joins too)."""

from collections.abc import Sequence
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from spaces.dynamodb import translate_unreachable
from spaces.exceptions import AlreadyMember, SpaceNotFound
from spaces.models import ROLES, Membership, Space, utc_now_iso
from spaces.selectors import space_get, space_members_counted
from spaces.transactions import Transaction, TransactionCancelled

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class CountUpdate:
    """How a transaction moves a space's member count, and the count it assumes."""

    value: int  # the count once the transaction applies
    action: Action
    condition: Condition  # the count is still as read: absent, or present


def _count_plus_one(space: Space) -> CountUpdate:
    if space.member_count is None:
        # A space the earlier system wrote: counted once, stored if nobody stored a count first.
        value = space_members_counted(space_id=space.id) + 1
        return CountUpdate(value, Space.member_count.set(value), Space.member_count.does_not_exist())
    return CountUpdate(int(space.member_count) + 1, Space.member_count.add(1), Space.member_count.exists())


def add_membership_to(
    tx: Transaction,
    membership: Membership,
    space: Space,
    *,
    space_condition: Condition | None = None,
    space_actions: Sequence[Action] = (),
) -> CountUpdate:
    """Put ``membership`` (if absent) into ``tx`` as ``"membership"`` and count it on ``space`` as ``"space"`` (if it
    exists, and ``space_condition``; with ``space_actions``); a failed ``"space"`` returns the space as it is."""
    count = _count_plus_one(space)
    tx.put("membership", membership, condition=Membership.pk.does_not_exist())
    condition = Space.pk.exists() & count.condition
    condition = condition & space_condition if space_condition is not None else condition
    item, actions = Space(*Space.key(space.id)), [count.action, *space_actions]
    tx.update("space", item, actions, condition=condition, return_old_on_failure=True)
    return count


def space_membership_add(*, space_id: str, user_id: str, role: str) -> Membership:
    """Add ``user_id`` to the space with ``role``; raises :class:`AlreadyMember` if they are in it."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    membership = Membership.build(space_id, user_id, role, utc_now_iso())
    with translate_unreachable():
        space = space_get(space_id=space_id)
        for _attempt in range(MAX_ATTEMPTS):
            tx = Transaction()
            add_membership_to(tx, membership, space)
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
                # No count to keep (the earlier system's space, or a gone one) as long as nobody stores one.
                tx.check("space", space, Space.member_count.does_not_exist())
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("membership"):
                    return False
                continue
            return True
    raise RuntimeError(f"space {space_id} kept changing")
