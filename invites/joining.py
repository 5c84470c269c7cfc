"""Using a code: resolve what it opens, and join with it (one transaction)."""

import logging
from collections.abc import Iterable

from django.conf import settings
from pynamodb.exceptions import DoesNotExist

from invites import codes
from invites.policies import code_works, join_requirements, now_epoch
from invites.services import holds, space_from
from spaces import keys
from spaces.dynamodb import get_many, translate_unreachable
from spaces.exceptions import AlreadyMember, InvalidInviteCode, InviteCodeUnavailable
from spaces.models import ROLE_MEMBER, CodeClaim, InviteMapping, Membership, Space, utc_now_iso
from spaces.services import add_membership_to
from spaces.transactions import Transaction, TransactionCancelled

logger = logging.getLogger("invites")


def _claimed_space_id(code: str) -> str | None:
    try:
        return CodeClaim.get(*CodeClaim.key(code), consistent_read=True).space_id
    except DoesNotExist:
        return None


def _legacy_candidate_space_ids(code: str) -> Iterable[str]:
    """Spaces the earlier system's mappings name for ``code`` as typed, upper and lower case (lazily: one Query)."""
    for variant in dict.fromkeys((code, code.upper(), code.lower())):
        for mapping in InviteMapping.query(keys.invite_pk(variant)):
            yield mapping.space_id


def _candidate_space_ids(code: str) -> Iterable[str]:
    """Where ``code`` may lead: its claim's space, then legacy mappings (whatever the flag: another
    writer of the guide's layout claims nothing). A candidate must still hold the code."""
    claimed = _claimed_space_id(code)
    if claimed is not None:
        yield claimed
    yield from (space_id for space_id in _legacy_candidate_space_ids(code) if space_id != claimed)


def invite_code_resolve(*, typed_code: str, user_id: str | None = None) -> tuple[Space, Membership | None]:
    """The space a code opens now and the user's membership (the claim, one BatchGet); else InvalidInviteCode."""
    code = _normalized(typed_code)
    with translate_unreachable():
        for space_id in _candidate_space_ids(code):
            space_key = Space.key(space_id)
            member_key = Membership.key(space_id, user_id) if user_id else None
            found = get_many([space_key, member_key] if member_key else [space_key])
            space = space_from(found.get(space_key))
            if space is None or not _opens(space, code):
                continue  # gone, stale (the space holds another code now), expired, used up or paused
            raw_member = found.get(member_key) if member_key else None
            return space, Membership.from_raw_data(raw_member) if raw_member else None
    raise InvalidInviteCode()


def _normalized(typed_code: str) -> str:
    try:
        return codes.normalize_typed_code(typed_code)
    except codes.MalformedCode:
        raise InvalidInviteCode() from None


def _space_holding(code: str) -> Space:
    """The space that holds ``code`` now (strongly consistent), for a join."""
    for space_id in _candidate_space_ids(code):
        try:
            space = Space.get(*Space.key(space_id), consistent_read=True)
        except DoesNotExist:
            continue
        if _opens(space, code):
            return space
    raise InvalidInviteCode()


def _opens(space: Space, code: str) -> bool:
    """The space holds ``code`` and its policy lets it work now."""
    return codes.same_code(space.invite_code, code) and code_works(space, now_epoch())


def space_join_with_code(*, typed_code: str, user_id: str) -> Space:
    """Join as a member: the claim, the space, one transaction (while the space holds the code, is not the
    caller's, and the code's policy allows it; the member count moves with it)."""
    code = _normalized(typed_code)
    with translate_unreachable():
        space = _space_holding(code)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            if space.owner_id == user_id:
                raise AlreadyMember()
            policy_condition, policy_actions_ = join_requirements(space, now_epoch())
            tx = Transaction()
            count = add_membership_to(
                tx,
                Membership.build(space.id, user_id, ROLE_MEMBER, utc_now_iso()),
                space,
                space_condition=holds(space.invite_code)
                & (Space.owner_id.does_not_exist() | (Space.owner_id != user_id))
                & policy_condition,
                space_actions=policy_actions_,
            )
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                space = _space_after_refused_join(cancelled, space)
                continue
            logger.info("User %s joined space %s with an invite code", user_id, space.id)
            space.member_count = count.value
            return space
    raise InviteCodeUnavailable(f"Space {space.id} kept changing; try again")


def _space_after_refused_join(cancelled: TransactionCancelled, space: Space) -> Space:
    """Why a join was refused: raise what the caller must hear, or return the space as it is now."""
    if cancelled.failed("membership"):
        raise AlreadyMember() from None
    if not cancelled.failed("space"):
        raise cancelled
    current = space_from(cancelled.old_item("space"))
    if current is None or current.invite_code != space.invite_code or not code_works(current, now_epoch()):
        raise InvalidInviteCode() from None  # gone, replaced, expired, used up or paused before we joined
    return current  # its owner, its count or its limit changed: decide again
