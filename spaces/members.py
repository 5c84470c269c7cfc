"""After the join: remove, block, leave, change a role, hand ownership over, clean up after a leaked code.

One transaction a change, keeping ``member_count`` exact; conditions, not locks, on what the caller read with the
space (one BatchGet): of two rival changes one wins, the other hears 404 or 409. ``actor`` None: the admin site's staff.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from spaces.access import MANAGED_BY, space_require_manager_of, space_require_owner, space_role_of
from spaces.dynamodb import translate_unreachable
from spaces.exceptions import DynamoBusy, InvalidMemberChange, MemberConflict, NotAMember, SpaceNotFound
from spaces.models import ROLE_ADMIN, ROLE_OWNER, ROLES_OWNERS_GIVE, Block, Membership, Space, utc_now_iso
from spaces.selectors import space_members_page
from spaces.services import MAX_ATTEMPTS, add_membership_to
from spaces.transactions import MAX_ACTIONS, Transaction, TransactionCancelled

OWNER_STAYS = "The owner cannot leave or be removed; hand ownership over to another member first"
CLEANUP_PAGE = 1000  # memberships a clean-up examines per Query


@dataclass(frozen=True)
class Actor:
    """Who asks, with their membership as read (None: an owner known only from the space's ``owner_id``)."""

    user_id: str
    membership: Membership | None

    def role(self, space: Space) -> str | None:
        return space_role_of(space=space, membership=self.membership, user_id=self.user_id)

    def still(self, tx: Transaction) -> Condition | None:
        """Check in ``tx`` that the role read still holds (an owner by ``owner_id``: a condition for the space)."""
        if self.membership is None:
            return Space.owner_id == self.user_id
        tx.check("actor", self.membership, Membership.role == self.membership.role)
        return None


@dataclass(frozen=True)
class Cleanup:
    removed: int
    blocked: int
    skipped: int  # joined with the code, but the caller may not remove them (admins, for an admin)
    complete: bool  # False: the cap or the time ran out; run it again


def _count_change(tx: Transaction, space: Space, delta: int, actor: Actor | None) -> None:
    """Move the count by ``delta`` while the actor's role holds (a space of the earlier system keeps none)."""
    condition = actor.still(tx) if actor else None
    kept = Space.member_count.exists() if space.member_count is not None else Space.member_count.does_not_exist()
    kept = kept & condition if condition is not None else kept
    item = Space(*Space.key(space.id))
    if space.member_count is None or delta == 0:
        tx.check("space", item, kept, return_old_on_failure=True)
    else:
        tx.update("space", item, [Space.member_count.add(delta)], condition=kept, return_old_on_failure=True)


def _run(space: Space, build: Callable[[Space], Transaction], refused: Callable[[TransactionCancelled], bool]) -> Space:
    """Commit ``build(space)``; ``refused`` raises what a cancellation means or says to go again (True);
    else the space changed (its count, its owner): decide again with it as it is now."""
    with translate_unreachable():
        for _attempt in range(MAX_ATTEMPTS):
            try:
                build(space).commit()
                return space
            except TransactionCancelled as cancelled:
                if cancelled.failed("actor"):
                    raise MemberConflict("Your role in this space changed meanwhile") from None
                if refused(cancelled):
                    continue
                if not cancelled.failed("space"):
                    raise
                raw = cancelled.old_item("space")
                if raw is None:
                    raise SpaceNotFound(space.id) from None
                space = Space.from_raw_data(raw)
    raise DynamoBusy(f"Space {space.id} kept changing; try again")


def _member_refused(cancelled: TransactionCancelled, target: Membership | None) -> bool:
    """A refused action on ``target``: gone (404) or its role changed (409)."""
    if target is None or not cancelled.failed("member"):
        return False
    try:
        Membership.get(target.pk, target.sk, consistent_read=True)  # after a refusal only: which was it
    except DoesNotExist:
        raise NotAMember(target.user_id) from None
    raise MemberConflict(f"The role of user {target.user_id} changed meanwhile; try again")


def _is_owner(space: Space, user_id: str, membership: Membership | None) -> bool:
    return space.owner_id == user_id or (membership is not None and membership.role == ROLE_OWNER)


def space_member_remove(
    *, space: Space, user_id: str, target: Membership | None, actor: Actor | None, block: bool = False
) -> None:
    """Remove ``user_id`` (``target``: their membership as read); ``block``: they may not join again through
    any code (a non-member too; one who joins meanwhile is removed). Leaving is this with ``actor`` None."""
    member = [target]

    def build(space: Space) -> Transaction:
        if actor is not None:
            if user_id == actor.user_id:
                raise InvalidMemberChange("You cannot remove or block yourself; leave the space instead")
            space_require_manager_of(role=actor.role(space), target_role=member[0].role if member[0] else None)
        if _is_owner(space, user_id, member[0]):
            raise MemberConflict(OWNER_STAYS)
        if member[0] is None and not block:
            raise NotAMember(user_id)
        tx = Transaction()
        if block:
            tx.put("block", Block.build(space.id, user_id, actor.user_id if actor else None))
        if member[0] is not None:
            tx.delete("member", member[0], condition=Membership.role == member[0].role)
        else:
            absent = Membership(*Membership.key(space.id, user_id))
            tx.check("member", absent, Membership.pk.does_not_exist(), return_old_on_failure=True)
        _count_change(tx, space, -1 if member[0] else 0, actor)
        return tx

    def refused(cancelled: TransactionCancelled) -> bool:
        if (raw := cancelled.old_item("member")) is not None:
            member[0] = Membership.from_raw_data(raw)  # they joined meanwhile: remove them with the block
            return True
        return _member_refused(cancelled, member[0])

    _run(space, build, refused)


def space_user_unblock(*, space: Space, user_id: str, actor: Actor | None) -> None:
    """Let ``user_id`` join again; :class:`NotAMember` if they are not blocked."""

    def build(space: Space) -> Transaction:
        if actor is not None:
            space_require_manager_of(role=actor.role(space), target_role=None)
        tx = Transaction()
        tx.delete("block", Block(*Block.key(space.id, user_id)), condition=Block.pk.exists())
        _count_change(tx, space, 0, actor)
        return tx

    def refused(cancelled: TransactionCancelled) -> bool:
        if cancelled.failed("block"):
            raise NotAMember(user_id, blocked=True) from None
        return False

    _run(space, build, refused)


def space_member_role_set(
    *, space: Space, user_id: str, target: Membership | None, role: str, actor: Actor | None
) -> Membership:
    """Give a member ``role`` (admin, member or viewer); the owner's changes by :func:`space_owner_transfer`."""

    def build(space: Space) -> Transaction:
        if actor is not None:
            space_require_owner(role=actor.role(space))
        if role not in ROLES_OWNERS_GIVE:
            raise InvalidMemberChange(f"A role is one of {', '.join(ROLES_OWNERS_GIVE)}")
        if target is None:
            raise NotAMember(user_id)
        if _is_owner(space, user_id, target):
            raise MemberConflict("The owner's role changes only by handing ownership over")
        tx = Transaction()
        tx.update("member", target, [Membership.role.set(role)], condition=Membership.role == target.role)
        _count_change(tx, space, 0, actor)
        return tx

    _run(space, build, lambda cancelled: _member_refused(cancelled, target))
    assert target is not None
    target.role = role
    return target


def space_owner_transfer(*, space: Space, user_id: str, target: Membership | None, actor: Actor) -> None:
    """Make the member ``user_id`` (``target``, as read) the owner and the owner (``actor``) an admin, at once."""

    def build(space: Space) -> Transaction:
        space_require_owner(role=actor.role(space))
        if user_id == actor.user_id or target is None:
            raise InvalidMemberChange("You already own this space") if target else NotAMember(user_id)
        tx = Transaction()
        tx.update("member", target, [Membership.role.set(ROLE_OWNER)], condition=Membership.role == target.role)
        owner_was = Space.owner_id == space.owner_id if space.owner_id else Space.owner_id.does_not_exist()
        handover = [Space.owner_id.set(user_id), Space.updated_at.set(utc_now_iso())]
        if actor.membership is None:  # an owner of the earlier system's, known from owner_id alone: counted in
            admin = Membership.build(space.id, actor.user_id, ROLE_ADMIN, utc_now_iso())
            add_membership_to(tx, admin, space, space_condition=owner_was, space_actions=handover)
            return tx
        tx.update("actor", actor.membership, [Membership.role.set(ROLE_ADMIN)], condition=Membership.role == ROLE_OWNER)
        item = Space(*Space.key(space.id))
        tx.update("space", item, handover, condition=Space.pk.exists() & owner_was, return_old_on_failure=True)
        return tx

    def refused(cancelled: TransactionCancelled) -> bool:
        if cancelled.failed("membership"):
            raise MemberConflict("Your role in this space changed meanwhile") from None
        return _member_refused(cancelled, target)

    _run(space, build, refused)


def space_members_cleanup(
    *, space: Space, code: str, actor: Actor | None, block: bool, most: int, seconds: float
) -> Cleanup:
    """Remove (``block``: and block) everyone who joined with ``code``: at most ``most`` in about ``seconds``,
    up to 98 removals (49 with blocks) and one count change a transaction. A rerun goes on (it starts over)."""
    role = actor.role(space) if actor else ROLE_OWNER
    space_require_manager_of(role=role, target_role=None)
    per_tx, deadline = (MAX_ACTIONS - 2) // (2 if block else 1), time.monotonic() + seconds
    removed, skipped, after = 0, 0, None
    while True:
        page, after = space_members_page(space_id=space.id, limit=CLEANUP_PAGE, after=after, code=code)
        targets = [m for m in page if m.role in MANAGED_BY[role] and m.user_id != space.owner_id]
        skipped += len(page) - len(targets)
        capped, targets = len(targets) > most - removed, targets[: most - removed]
        for start in range(0, len(targets), per_tx):
            if time.monotonic() >= deadline:
                return Cleanup(removed, removed if block else 0, skipped, complete=False)
            space, done = _remove_batch(space, targets[start : start + per_tx], block=block, actor=actor)
            removed += done
        if capped or after is None:
            return Cleanup(removed, removed if block else 0, skipped, complete=not capped)


def _remove_batch(space: Space, batch: list[Membership], *, block: bool, actor: Actor | None) -> tuple[Space, int]:
    """Remove ``batch`` in one transaction; those who left or changed meanwhile are dropped, the rest go again."""
    pending, by = list(batch), actor.user_id if actor else None

    def build(space: Space) -> Transaction:
        tx = Transaction()
        for member in pending:
            still = (Membership.role == member.role) & (Membership.joined_with == member.joined_with)
            tx.delete(("member", member.user_id), member, condition=still)
            if block:
                tx.put(("block", member.user_id), Block.build(space.id, member.user_id, by))
        _count_change(tx, space, -len(pending), actor)
        return tx

    def refused(cancelled: TransactionCancelled) -> bool:
        gone = [member for member in pending if cancelled.failed(("member", member.user_id))]
        pending[:] = [member for member in pending if member not in gone]
        return bool(gone)

    return _run(space, build, refused), len(pending)
