"""The invite-code engine: claim, regenerate, assign_if_missing, resolve, join.

Invariants (DEVELOPERS.md), and how the order of writes keeps them without
transactions (moto copies the whole table per transaction):

* A code is unique by construction: before any space holds a code, a
  ``CODE#<CODE>/CLAIM`` item is put with ``attribute_not_exists``. Claims are
  never deleted, so no code is ever issued twice, and a space never holds a
  code again once it has moved away from it.
* A space has at most one working code, the one stored on it: ``resolve``
  follows the claim and then checks the space's current ``invite_code``
  (strongly consistent), so a leftover claim or mapping never lets anyone in.
* Nothing overwrites a code it did not read: the switch on the space is a
  compare-and-set against the code read before (or its absence).
* No mapping is missing or left stale for long: the new code's ``INVITE#``
  mapping is put *before* the switch, so a later regeneration, which reads
  the new code only after the switch, always finds that mapping in place to
  delete; mappings are deleted only *after* their code is dead, so a late
  delete never removes a live one. Deletes go through ``invites.janitor``:
  off the request path, and retried after an outage. A write whose outcome
  is unknown hands both codes to the janitor, which keeps the one the space
  holds when it looks.

Only a process killed between steps leaves something behind: a dead code's
mapping (it lets nobody in) for ``audit_invite_codes --repair`` to remove.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from invites import codes
from invites.janitor import janitor
from operations import metrics
from spaces import keys
from spaces.dynamodb import current_binding, get_many, is_condition_failure, translate_unreachable, write_batch
from spaces.exceptions import AlreadyMember, InvalidInviteCode, InviteCodeUnavailable, SpaceNotFound
from spaces.models import (
    ROLE_MEMBER,
    CodeClaim,
    InviteMapping,
    Membership,
    Space,
    TableFlag,
    utc_now_iso,
)

logger = logging.getLogger("invites")

LEGACY_CODES_RECORDED = "legacy-codes-recorded"


@dataclass(frozen=True)
class CodeChange:
    """What a regeneration or assignment did."""

    space_id: str
    old_code: str | None
    new_code: str | None
    # False when another writer changed the code first: new_code is then
    # the code that writer set (still fresh relative to the request).
    applied: bool = True


# --- table-wide facts -------------------------------------------------------------


@functools.cache
def _legacy_codes_recorded_cached(table_name: str) -> bool:
    # Only a positive answer is cached (a miss raises): the flag is never unset.
    with translate_unreachable():
        try:
            TableFlag.get(*TableFlag.key(LEGACY_CODES_RECORDED), consistent_read=True)
        except DoesNotExist:
            raise LookupError(table_name) from None
    return True


def legacy_codes_recorded() -> bool:
    """True once every code the earlier system wrote has a claim.

    Fresh tables are created with the flag; on an inherited table the first
    complete backfill or audit repair sets it. Until then, a new code is also
    checked against the ``INVITE#`` partition of that code.
    """
    try:
        return _legacy_codes_recorded_cached(current_binding().table_name)
    except LookupError:
        return False


def mark_legacy_codes_recorded(*, by: str) -> None:
    pk, sk = TableFlag.key(LEGACY_CODES_RECORDED)
    TableFlag(pk, sk, set_at=utc_now_iso(), set_by=by).save()
    _legacy_codes_recorded_cached.cache_clear()


def forget_cached_table_facts() -> None:
    """For tests that remove the flag behind the engine's back."""
    _legacy_codes_recorded_cached.cache_clear()


# --- claims ---------------------------------------------------------------------


def _legacy_mapping_exists(code: str) -> bool:
    return any(True for _ in InviteMapping.query(keys.invite_pk(code), limit=1))


def invite_code_claim_new(*, space_id: str) -> str:
    """Draw a code no space has ever held and claim it for ``space_id``."""
    check_legacy = not legacy_codes_recorded()
    now = utc_now_iso()
    for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        code = codes.generate_code()
        if check_legacy and _legacy_mapping_exists(code):
            logger.info("Invite code collision with a legacy mapping; drawing again")
            metrics.invite_code_collisions.labels(kind="legacy_mapping").inc()
            continue
        try:
            CodeClaim.build(code, space_id, now).save(condition=CodeClaim.pk.does_not_exist())
        except PutError as exc:
            if is_condition_failure(exc):
                logger.info("Invite code collision with an existing claim; drawing again")
                metrics.invite_code_collisions.labels(kind="claim").inc()
                continue
            raise
        metrics.invite_codes_generated.inc()
        return code
    raise InviteCodeUnavailable(f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts")


def invite_code_record_existing(*, space: Space) -> str | None:
    """Claim the code a space already holds (legacy data); idempotent.

    Returns the id of the *other* space that already claims the same code
    (a duplicate for the audit to fix), or None when the claim is ours.
    """
    code = space.invite_code
    if not code:
        return None
    try:
        CodeClaim.build(code, space.id, utc_now_iso()).save(
            condition=CodeClaim.pk.does_not_exist() | (CodeClaim.space_id == space.id)
        )
    except PutError as exc:
        if not is_condition_failure(exc):
            raise
        holder = CodeClaim.get(*CodeClaim.key(code), consistent_read=True)
        return holder.space_id
    return None


# --- the switch -------------------------------------------------------------------


def _space_or_missing(space_id: str) -> Space:
    try:
        return Space.get(*Space.key(space_id), consistent_read=True)
    except DoesNotExist:
        raise SpaceNotFound(space_id) from None


@dataclass(frozen=True)
class _Switch:
    applied: bool
    # After a failed condition: the space as it is now (None if it is gone).
    current: Space | None = None


def _switch_code(space: Space, new_code: str) -> _Switch:
    """Compare-and-set the space's code from what we read to ``new_code``."""
    old_code = space.invite_code
    expected = (Space.invite_code == old_code) if old_code else Space.invite_code.does_not_exist()
    now = utc_now_iso()
    try:
        # The connection's UpdateItem, not Model.update: that one asks for the
        # whole item back (ALL_NEW), which the switch does not need.
        Space._get_connection().update_item(
            space.pk,
            range_key=space.sk,
            actions=[Space.invite_code.set(new_code), Space.updated_at.set(now)],
            condition=Space.pk.exists() & expected,
        )
    except UpdateError as exc:
        if not is_condition_failure(exc):
            raise
        # When the answer to an applied switch is lost (a connection reset),
        # botocore retries it and the retry fails its condition on our own
        # write. Only the holder of new_code's claim ever sets it, so finding
        # it on the space means the switch was ours and it happened.
        current = _space_now(space.id)
        if current is None or current.invite_code != new_code:
            return _Switch(applied=False, current=current)
    space.invite_code = new_code
    space.updated_at = now
    return _Switch(applied=True)


def _space_now(space_id: str) -> Space | None:
    try:
        return Space.get(*Space.key(space_id), consistent_read=True)
    except DoesNotExist:
        return None


def _log_change(change: CodeChange, *, actor_id: str | None, source: str) -> None:
    if change.applied:
        logger.info(
            "Invite code of space %s changed from %s to %s by %s via %s",
            change.space_id,
            change.old_code or "(none)",
            change.new_code,
            actor_id or "system",
            source,
        )
        metrics.invite_code_changes.labels(source=source).inc()


def invite_code_regenerate(
    *,
    space_id: str,
    space: Space | None = None,
    actor_id: str | None = None,
    source: str = "api",
) -> CodeChange:
    """Give the space a new code; its old code stops working at once.

    Works for spaces with and without a code. Pass ``space`` when the caller
    has just read it (strongly consistent) to save a round trip: then the
    request waits for a claim, the new mapping and the switch; the old
    mapping's delete follows off the request path.
    """
    with translate_unreachable():
        if space is None:
            space = _space_or_missing(space_id)
        for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            old_code = space.invite_code
            new_code = invite_code_claim_new(space_id=space_id)
            try:
                InviteMapping.build(new_code, space_id, utc_now_iso()).save()
                switch = _switch_code(space, new_code)
            except Exception:
                # Which of the two codes the space holds now is unknown.
                janitor.remove_unless_held(space_id, [old_code, new_code])
                raise
            if switch.applied:
                janitor.remove_dead(space_id, [old_code])
                change = CodeChange(space_id, old_code, new_code)
                _log_change(change, actor_id=actor_id, source=source)
                return change
            # Lost the race: our mapping must not outlive us.
            janitor.remove_dead(space_id, [new_code])
            if switch.current is None:
                janitor.remove_dead(space_id, [old_code])
                raise SpaceNotFound(space_id)
            space = switch.current
            if space.invite_code and space.invite_code != old_code:
                # A concurrent regeneration already replaced the code we read;
                # its code is as fresh as ours would have been.
                return CodeChange(space_id, old_code, space.invite_code, applied=False)
        raise InviteCodeUnavailable(f"Space {space_id} kept changing; try again")


def invite_code_assign_if_missing(
    *,
    spaces: list[Space],
    actor_id: str | None = None,
    source: str = "backfill",
    on_change: Callable[[CodeChange], None] | None = None,
) -> list[CodeChange]:
    """Give each space a code only if it still has none at the moment of the write.

    Never overwrites: a space that received a code after it was read keeps it
    (reported with ``applied=False`` and that space's code unknown). Safe to
    repeat and to run concurrently. Round trips: one claim and one switch per
    space, plus one batch write per 25 spaces for the mappings.

    ``on_change`` hears of each change as soon as it is made, so a caller
    whose call fails part way knows which spaces were already handled. On a
    failure, the mappings of the spaces whose switch did not happen, or whose
    outcome is unknown, go to the janitor before the error propagates.
    """
    with translate_unreachable():
        wanting = [space for space in spaces if not space.invite_code]
        now = utc_now_iso()
        claimed = [(space, invite_code_claim_new(space_id=space.id)) for space in wanting]
        changes: list[CodeChange] = []
        settled: set[str] = set()
        try:
            write_batch(puts=[InviteMapping.build(code, space.id, now) for space, code in claimed])
            for space, code in claimed:
                if _switch_code(space, code).applied:
                    change = CodeChange(space.id, None, code)
                    _log_change(change, actor_id=actor_id, source=source)
                else:
                    change = CodeChange(space.id, None, None, applied=False)
                    janitor.remove_dead(space.id, [code])
                settled.add(space.id)
                changes.append(change)
                if on_change is not None:
                    on_change(change)
        except Exception:
            for space, code in claimed:
                if space.id not in settled:
                    janitor.remove_unless_held(space.id, [code])
            raise
        return changes


# --- resolving and joining ----------------------------------------------------------


def _claimed_space_id(code: str) -> str | None:
    try:
        return CodeClaim.get(*CodeClaim.key(code), consistent_read=True).space_id
    except DoesNotExist:
        return None


def _legacy_candidate_space_ids(code: str) -> list[str]:
    """Spaces named by the earlier system's mappings for ``code`` (exact, then upper case)."""
    candidates: list[str] = []
    for variant in dict.fromkeys((code, code.upper())):
        candidates.extend(mapping.space_id for mapping in InviteMapping.query(keys.invite_pk(variant)))
    return candidates


def _candidate_space_ids(code: str) -> list[str]:
    space_id = _claimed_space_id(code)
    if space_id is not None:
        return [space_id]
    if legacy_codes_recorded():
        return []
    return _legacy_candidate_space_ids(code)


def invite_code_resolve(*, typed_code: str, user_id: str | None = None) -> tuple[Space, Membership | None]:
    """The space a typed code opens now, and the user's membership in it if any.

    Raises :class:`InvalidInviteCode` for malformed, unknown or stale codes.
    Round trips: a claim read and one batch read of the space and the
    membership, both strongly consistent, so a join that starts after a
    regeneration finished sees the new code.
    """
    try:
        code = codes.normalize_typed_code(typed_code)
    except codes.MalformedCode:
        raise InvalidInviteCode() from None
    with translate_unreachable():
        for space_id in _candidate_space_ids(code):
            space_key = Space.key(space_id)
            member_key = Membership.key(space_id, user_id) if user_id else None
            found = get_many([space_key, member_key] if member_key else [space_key])
            raw_space = found.get(space_key)
            if raw_space is None:
                continue
            space = Space.from_raw_data(raw_space)
            if not codes.same_code(space.invite_code, code):
                continue  # stale: the space holds another code now
            raw_member = found.get(member_key) if member_key else None
            return space, Membership.from_raw_data(raw_member) if raw_member else None
    raise InvalidInviteCode()


def _membership_joined_at(space_id: str, user_id: str) -> str | None:
    try:
        return Membership.get(*Membership.key(space_id, user_id), consistent_read=True).joined_at
    except DoesNotExist:
        return None


def space_join_with_code(*, typed_code: str, user_id: str) -> Space:
    """Join the space the code opens, as a member. One conditional write."""
    space, membership = invite_code_resolve(typed_code=typed_code, user_id=user_id)
    if membership is not None:
        raise AlreadyMember()
    joined_at = utc_now_iso()
    with translate_unreachable():
        try:
            Membership.build(space.id, user_id, ROLE_MEMBER, joined_at).save(condition=Membership.pk.does_not_exist())
        except PutError as exc:
            if not is_condition_failure(exc):
                raise
            # When the answer to our put is lost, botocore retries it and the retry
            # fails its condition on our own write: that join happened. The
            # timestamp (to the microsecond) tells our write from another one.
            if _membership_joined_at(space.id, user_id) != joined_at:
                raise AlreadyMember() from None
    logger.info("User %s joined space %s with an invite code", user_id, space.id)
    return space
