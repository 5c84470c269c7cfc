"""Using a code: resolve what it opens, and join with it (one transaction)."""

import logging
from collections.abc import Iterable

from django.conf import settings
from pynamodb.exceptions import DoesNotExist

from invites import codes
from invites.policies import InvitePolicy, code_works, join_requirements, now_epoch
from invites.services import holds, space_from
from spaces import keys
from spaces.dynamodb import get_many, translate_unreachable
from spaces.exceptions import AlreadyMember, Blocked, InvalidInviteCode, InviteCodeUnavailable
from spaces.models import Block, CodeClaim, InviteMapping, Membership, Space, utc_now_iso
from spaces.services import add_membership_to
from spaces.transactions import Transaction, TransactionCancelled

logger = logging.getLogger("invites")


def _candidate_space_ids(code: str) -> Iterable[str]:
    """Where ``code`` may lead (lazily): its claim's space, then the spaces legacy mappings name for it as typed, in
    upper and lower case (whatever the flag: another writer of the guide's layout claims nothing). A candidate must
    still hold the code."""
    try:
        claimed: str | None = CodeClaim.get(*CodeClaim.key(code), consistent_read=True).space_id
    except DoesNotExist:
        claimed = None
    if claimed is not None:
        yield claimed
    for variant in dict.fromkeys((code, code.upper(), code.lower())):
        yield from (m.space_id for m in InviteMapping.query(keys.invite_pk(variant)) if m.space_id != claimed)


def invite_code_resolve(*, typed_code: str, user_id: str | None = None) -> tuple[Space, Membership | None]:
    """The space a code opens now and the user's membership (the claim, one BatchGet); else InvalidInviteCode."""
    code = _normalized(typed_code)
    with translate_unreachable():
        for space_id in _candidate_space_ids(code):
            space_key, member_key = Space.key(space_id), Membership.key(space_id, user_id or "")
            found = get_many([space_key, member_key] if user_id else [space_key])
            space = space_from(found.get(space_key))
            if space is None or not _opens(space, code):
                continue  # gone, stale (the space holds another code now), expired, used up or paused
            raw_member = found.get(member_key)  # absent without a user: not read
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
    """Join with the role the code grants: the claim, the space, one transaction (while the space holds the code,
    is not the caller's, the caller is not blocked and the code's policy allows it; the member count moves with
    it). The membership records the code and who set it."""
    code = _normalized(typed_code)
    with translate_unreachable():
        space = _space_holding(code)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            if space.owner_id == user_id:
                raise AlreadyMember()
            policy_condition, policy_actions_ = join_requirements(space, now_epoch())
            tx = Transaction()
            tx.check("block", Block(*Block.key(space.id, user_id)), Block.pk.does_not_exist())
            joining = Membership.build(space.id, user_id, InvitePolicy.of(space).role, utc_now_iso())
            joining.joined_with, joining.code_set_by = space.invite_code, space.invite_set_by
            not_owner = Space.owner_id.does_not_exist() | (Space.owner_id != user_id)
            condition = holds(space.invite_code) & not_owner & policy_condition
            count = add_membership_to(tx, joining, space, space_condition=condition, space_actions=policy_actions_)
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
    if cancelled.failed("block"):
        raise Blocked() from None
    if not cancelled.failed("space"):
        raise cancelled
    current = space_from(cancelled.old_item("space"))
    if current is None or current.invite_code != space.invite_code or not code_works(current, now_epoch()):
        raise InvalidInviteCode() from None  # gone, replaced, expired, used up or paused before we joined
    return current  # its owner, its count or its limit changed: decide again
