"""The invite-code engine: create with a code, regenerate, assign if missing, record, resolve, join.

Every operation is one DynamoDB transaction (:mod:`spaces.transactions`) plus
only the reads it needs, so a crash, a race or an outage at any moment leaves
the table as it was before the operation or as it is after it, never between:

* **A code is unique by construction.** Every transaction that gives a space a
  code also puts ``CODE#<CODE>/CLAIM`` with ``attribute_not_exists``; a code
  someone already claimed cancels the transaction and a new code is drawn.
  Claims are never deleted, so no code is ever issued twice.
* **A space has at most one working code, the one stored on it.** The switch
  of the space's ``invite_code``, the new code's ``INVITE#`` mapping and the
  delete of the old code's mapping are one transaction: there is no moment
  with two mappings or none. Joining checks, inside its own transaction, that
  the space still holds the code used.
* **Nothing overwrites a code it did not read.** The switch is conditional on
  the code read (or its absence); a cancelled switch returns the item as it
  is now (``ALL_OLD``), which tells a lost race (another writer's code wins)
  from a missing space without another read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition

from invites import codes
from invites.policies import InvitePolicy, code_works, expiry_in, join_requirements, now_epoch, policy_actions
from operations import metrics
from spaces import keys
from spaces.dynamodb import current_binding, error_code, get_many, is_unreachable, short_reason, translate_unreachable
from spaces.exceptions import (
    AlreadyMember,
    DomainError,
    InvalidInviteCode,
    InviteCodeUnavailable,
    NoInviteCode,
    SpaceNotFound,
)
from spaces.ids import new_space_id
from spaces.models import (
    ROLE_MEMBER,
    ROLE_OWNER,
    CodeClaim,
    InviteMapping,
    Membership,
    Space,
    utc_now_iso,
)
from spaces.selectors import space_get
from spaces.services import add_membership_to
from spaces.table import table_flag_is_set, table_flag_set
from spaces.transactions import TRANSIENT_REASONS, Transaction, TransactionCancelled

logger = logging.getLogger("invites")

LEGACY_CODES_RECORDED = keys.LEGACY_CODES_RECORDED_FLAG

# Three actions a space (claim, mapping, switch); DynamoDB takes 100 per transaction.
SPACES_PER_ASSIGNMENT = 33
# Two actions a space (claim, check of the space's code).
SPACES_PER_RECORDING = 50


@dataclass(frozen=True)
class CodeChange:
    """What a regeneration or assignment did to one space."""

    space_id: str
    old_code: str | None
    new_code: str | None
    # False when the engine did not set new_code itself: another writer changed the
    # code first (new_code is then that writer's code, when known), or it failed.
    applied: bool = True
    # Why the space could not be given a code (it is gone, DynamoDB refused it).
    error: str | None = None


# --- table-wide facts -------------------------------------------------------------


@functools.cache
def _legacy_codes_recorded_cached(table_name: str) -> bool:
    # Only a positive answer is cached (a miss raises): the flag is never unset.
    if not table_flag_is_set(LEGACY_CODES_RECORDED):
        raise LookupError(table_name)
    return True


def legacy_codes_recorded() -> bool:
    """True once every code the earlier system wrote has a claim.

    Fresh tables are created with the flag; on an inherited table the first
    complete backfill or audit repair sets it. Until then, a new code is also
    checked against the ``INVITE#`` partitions of that code.
    """
    try:
        return _legacy_codes_recorded_cached(current_binding().table_name)
    except LookupError:
        return False


def mark_legacy_codes_recorded(*, by: str) -> None:
    table_flag_set(LEGACY_CODES_RECORDED, by=by)
    _legacy_codes_recorded_cached.cache_clear()


# --- drawing codes ------------------------------------------------------------------


def _legacy_mapping_exists(code: str) -> bool:
    """True when the earlier system mapped ``code`` (as drawn, or in lower case) to a space."""
    return any(
        any(True for _ in InviteMapping.query(keys.invite_pk(variant), limit=1))
        for variant in dict.fromkeys((code, code.lower()))
    )


def _draw_code(check_legacy: bool) -> str:
    """A fresh code; the caller's transaction claims it (a collision cancels it)."""
    for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        code = codes.generate_code()
        if check_legacy and _legacy_mapping_exists(code):
            logger.info("Invite code collision with a legacy mapping; drawing again")
            metrics.invite_code_collisions.labels(kind="legacy_mapping").inc()
            continue
        return code
    raise InviteCodeUnavailable(f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts")


def _claim_new(tx: Transaction, name: Any, code: str, space_id: str, now: str) -> None:
    tx.put(name, CodeClaim.build(code, space_id, now), condition=CodeClaim.pk.does_not_exist())


def _count_collision() -> None:
    logger.info("Invite code collision with an existing claim; drawing again")
    metrics.invite_code_collisions.labels(kind="claim").inc()


def _holds(code: str | None) -> Condition:
    """The space exists and holds exactly ``code`` (None: no code at all)."""
    if code:
        return Space.pk.exists() & (Space.invite_code == code)
    return Space.pk.exists() & (Space.invite_code.does_not_exist() | (Space.invite_code == ""))


def _log_change(change: CodeChange, *, actor_id: str | None, source: str) -> None:
    # Codes are secrets that open spaces: the log names them by fingerprint only
    # (the backfill command prints the codes it set on its own output).
    logger.info(
        "Invite code of space %s changed from %s to %s by %s via %s",
        change.space_id,
        codes.fingerprint(change.old_code),
        codes.fingerprint(change.new_code),
        actor_id or "system",
        source,
    )
    metrics.invite_codes_generated.inc()
    metrics.invite_code_changes.labels(source=source).inc()


# --- creating a space -----------------------------------------------------------------


def space_create(
    *,
    owner_id: str,
    name: str,
    description: str = "",
    is_public: bool = False,
    space_type: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Space:
    """Create a space with its owner's membership and an invite code: one transaction."""
    space_id = new_space_id()
    check_legacy = not legacy_codes_recorded()
    with translate_unreachable():
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            code = _draw_code(check_legacy)
            now = utc_now_iso()
            space = Space.build(
                space_id,
                name=name,
                description=description,
                space_type=space_type,
                is_public=is_public,
                owner_id=owner_id,
                invite_code=code,
                member_count=1,
                created_at=now,
                updated_at=now,
                metadata=metadata or None,
            )
            tx = Transaction()
            tx.put("space", space, condition=Space.pk.does_not_exist())
            tx.put("owner", Membership.build(space_id, owner_id, ROLE_OWNER, now))
            _claim_new(tx, "claim", code, space_id, now)
            tx.put("mapping", InviteMapping.build(code, space_id, now))
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("claim"):
                    _count_collision()
                    continue
                raise
            metrics.invite_codes_generated.inc()
            return space
    raise InviteCodeUnavailable(f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts")


# --- regenerating -------------------------------------------------------------------------


def _space_from(raw: dict[str, Any] | None) -> Space | None:
    return Space.from_raw_data(raw) if raw else None


def invite_code_regenerate(
    *,
    space_id: str,
    space: Space | None = None,
    actor_id: str | None = None,
    source: str = "api",
    policy: InvitePolicy | None = None,
) -> CodeChange:
    """Give the space a new code; its old code stops working at once.

    Works for spaces with and without a code. One transaction: claim the new
    code, put its mapping, switch the space from the code read to the new one,
    delete the old code's mapping. Pass ``space`` when the caller has just read
    it (strongly consistent) to save a round trip. When another regeneration
    wins the race, its code is returned (``applied=False``): it is as fresh
    relative to this request as ours would have been. The new code gets
    ``policy`` (default: none, the guide's code that works until replaced);
    its uses start from zero.
    """
    check_legacy = not legacy_codes_recorded()
    with translate_unreachable():
        if space is None:
            space = space_get(space_id=space_id)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            old_code = space.invite_code or None
            new_code = _draw_code(check_legacy)
            try:
                _regeneration(space_id, old_code, new_code, policy or InvitePolicy()).commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("space"):
                    current = _space_from(cancelled.old_item("space"))
                    if current is None:
                        raise SpaceNotFound(space_id) from None
                    if current.invite_code and current.invite_code != old_code:
                        return CodeChange(space_id, old_code, current.invite_code, applied=False)
                    space = current
                    continue
                if cancelled.failed("claim"):
                    _count_collision()
                    continue
                raise
            change = CodeChange(space_id, old_code, new_code)
            _log_change(change, actor_id=actor_id, source=source)
            return change
    raise InviteCodeUnavailable(f"Space {space_id} kept changing; try again")


def _regeneration(space_id: str, old_code: str | None, new_code: str, policy: InvitePolicy) -> Transaction:
    """Claim ``new_code``, map it, switch the space from ``old_code`` to it with ``policy``, unmap ``old_code``."""
    now = utc_now_iso()
    tx = Transaction()
    _claim_new(tx, "claim", new_code, space_id, now)
    tx.put("mapping", InviteMapping.build(new_code, space_id, now))
    tx.update(
        "space",
        Space(*Space.key(space_id)),
        [Space.invite_code.set(new_code), Space.updated_at.set(now), *policy_actions(policy, reset_uses=True)],
        condition=_holds(old_code),
        return_old_on_failure=True,
    )
    if old_code:
        tx.delete("old mapping", InviteMapping(*InviteMapping.key(old_code, space_id)))
    return tx


# --- changing the policy of the current code ------------------------------------------------------

UNCHANGED = object()


def invite_code_policy_update(
    *,
    space_id: str,
    space: Space | None = None,
    expires_in: Any = UNCHANGED,
    max_uses: Any = UNCHANGED,
    paused: Any = UNCHANGED,
    actor_id: str | None = None,
) -> Space:
    """Change the policy of the space's current code without replacing the code.

    ``expires_in`` (seconds, or None for never) counts from now; ``max_uses``
    (None for no limit) at or below the uses so far means used up; ``paused``
    stops the code until unpaused. Fields left ``UNCHANGED`` keep their value.
    One transaction, conditional on the code read: if the code is replaced
    meanwhile, the change applies to the new code. Raises
    :class:`NoInviteCode` for a space without a code.
    """
    with translate_unreachable():
        if space is None:
            space = space_get(space_id=space_id)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            if not space.invite_code:
                raise NoInviteCode(space_id)
            policy = _changed_policy(InvitePolicy.of(space), expires_in, max_uses, paused)
            tx = Transaction()
            tx.update(
                "space",
                Space(*Space.key(space_id)),
                [*policy_actions(policy, reset_uses=False), Space.updated_at.set(utc_now_iso())],
                condition=_holds(space.invite_code),
                return_old_on_failure=True,
            )
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                current = _space_from(cancelled.old_item("space"))
                if current is None:
                    raise SpaceNotFound(space_id) from None
                space = current
                continue
            _log_policy(space, policy, actor_id)
            space.invite_expires_at, space.invite_max_uses = policy.expires_at, policy.max_uses
            space.invite_paused = policy.paused or None
            return space
    raise InviteCodeUnavailable(f"Space {space_id} kept changing; try again")


def _log_policy(space: Space, policy: InvitePolicy, actor_id: str | None) -> None:
    logger.info(
        "Invite policy of space %s (%s) set by %s: expires_at=%s max_uses=%s paused=%s",
        space.id,
        codes.fingerprint(space.invite_code),
        actor_id or "system",
        policy.expires_at,
        policy.max_uses,
        policy.paused,
    )


def _changed_policy(current: InvitePolicy, expires_in: Any, max_uses: Any, paused: Any) -> InvitePolicy:
    if expires_in is not UNCHANGED:
        current = replace(current, expires_at=expiry_in(expires_in))
    if max_uses is not UNCHANGED:
        current = replace(current, max_uses=None if max_uses is None else int(max_uses))
    if paused is not UNCHANGED:
        current = replace(current, paused=bool(paused))
    return current


# --- assigning codes to spaces without one (backfill, admin, audit) -----------------------------


def invite_code_assign_if_missing(
    *,
    spaces: list[Space],
    actor_id: str | None = None,
    source: str = "backfill",
    on_change: Callable[[CodeChange], None] | None = None,
) -> list[CodeChange]:
    """Give each space a code only if it still has none at the moment of the write.

    Up to 33 spaces go in one transaction (claim, mapping, and a switch
    conditional on the space still having no code). A cancelled transaction is
    split by its reasons: a space that got a code from someone else is skipped
    (``applied=False`` with that code), a collision draws again, a space that
    is gone or that DynamoDB refuses fails alone (``error``), and the rest is
    tried again. Spaces that have a code in hand are ignored. ``on_change``
    hears of each outcome as soon as it is known.
    """
    wanting = [space for space in spaces if not space.invite_code]
    changes: list[CodeChange] = []
    check_legacy = not legacy_codes_recorded()
    with translate_unreachable():
        for start in range(0, len(wanting), SPACES_PER_ASSIGNMENT):
            for change in _assign_batch(wanting[start : start + SPACES_PER_ASSIGNMENT], check_legacy):
                if change.applied:
                    _log_change(change, actor_id=actor_id, source=source)
                changes.append(change)
                if on_change is not None:
                    on_change(change)
    return changes


def _assign_batch(batch: list[Space], check_legacy: bool) -> list[CodeChange]:
    settled: list[CodeChange] = []
    pending = list(batch)
    for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        if not pending:
            return settled
        drawn = _distinct_codes([space.id for space in pending], check_legacy)
        now = utc_now_iso()
        tx = Transaction()
        for space in pending:
            _claim_new(tx, ("claim", space.id), drawn[space.id], space.id, now)
            tx.put(("mapping", space.id), InviteMapping.build(drawn[space.id], space.id, now))
            tx.update(
                ("space", space.id),
                Space(*Space.key(space.id)),
                # A first code starts with no policy, whatever another writer left on the space.
                [
                    Space.invite_code.set(drawn[space.id]),
                    Space.updated_at.set(now),
                    *policy_actions(InvitePolicy(), reset_uses=True),
                ],
                condition=_holds(None),
                return_old_on_failure=True,
            )
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            pending = _split_assignment(cancelled, pending, settled)
            continue
        except Exception as exc:
            if not _is_refusal(exc):
                raise
            if len(pending) == 1:
                return [*settled, CodeChange(pending[0].id, None, None, applied=False, error=_describe(exc))]
            # DynamoDB refused the request as a whole (one bad item makes the
            # transaction invalid): one transaction per space isolates the bad one.
            for space in pending:
                settled.extend(_assign_batch([space], check_legacy))
            return settled
        settled.extend(CodeChange(space.id, None, drawn[space.id]) for space in pending)
        return settled
    reason = f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts"
    return settled + [CodeChange(space.id, None, None, applied=False, error=reason) for space in pending]


def _distinct_codes(space_ids: list[str], check_legacy: bool) -> dict[str, str]:
    """A code per space, no two alike: two actions on one claim would make the transaction invalid."""
    drawn: dict[str, str] = {}
    for space_id in space_ids:
        code = _draw_code(check_legacy)
        while code in drawn.values():
            code = _draw_code(check_legacy)
        drawn[space_id] = code
    return drawn


def _split_assignment(cancelled: TransactionCancelled, pending: list[Space], settled: list[CodeChange]) -> list[Space]:
    """Settle the spaces whose outcome the cancellation decided; return those to try again."""
    again: list[Space] = []
    for space in pending:
        if cancelled.failed(("space", space.id)):
            current = _space_from(cancelled.old_item(("space", space.id)))
            if current is None:
                settled.append(CodeChange(space.id, None, None, applied=False, error=str(SpaceNotFound(space.id))))
            else:
                settled.append(CodeChange(space.id, None, current.invite_code or None, applied=False))
            continue
        if cancelled.failed(("claim", space.id)):
            _count_collision()
            again.append(space)
            continue
        refusal = next(
            (cancelled.reasons[name] for name in _assignment_actions(space.id) if name in cancelled.reasons), None
        )
        if refusal is not None and refusal.code not in TRANSIENT_REASONS:
            settled.append(CodeChange(space.id, None, None, applied=False, error=refusal.message or refusal.code))
            continue
        again.append(space)  # cancelled because of its neighbours, or a transient conflict
    return again


def _assignment_actions(space_id: str) -> tuple[tuple[str, str], ...]:
    return ("claim", space_id), ("mapping", space_id), ("space", space_id)


def _is_refusal(exc: BaseException) -> bool:
    """DynamoDB answered and refused the request (as opposed to a network failure)."""
    return error_code(exc) is not None and not is_unreachable(exc)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DomainError) else short_reason(exc)


# --- recording the codes of legacy spaces -----------------------------------------------------


def invite_codes_record_existing(*, spaces: Iterable[Space]) -> dict[str, str | None]:
    """Claim the codes spaces already hold (legacy data); idempotent.

    Returns, per space id, the id of the *other* space that already claims the
    same code (a duplicate for the audit to fix), or None when the claim is
    ours now (or the space's code changed since it was read: a code this
    engine sets is claimed by construction). Each claim is put only while its
    space still holds that code, 50 spaces a transaction.
    """
    holding = [space for space in spaces if space.invite_code]
    holders: dict[str, str | None] = {}
    with translate_unreachable():
        for batch in _batches_with_distinct_codes(holding, SPACES_PER_RECORDING):
            holders.update(_record_batch(batch))
    return holders


def _batches_with_distinct_codes(spaces: list[Space], size: int) -> Iterable[list[Space]]:
    """Batches of at most ``size`` in which no two spaces hold the same code (ignoring case).

    Two actions on one claim would make a transaction invalid; a later holder of a
    code goes into a later batch, where its claim is found taken.
    """
    remaining = spaces
    while remaining:
        batch: list[Space] = []
        later: list[Space] = []
        seen: set[str] = set()
        for space in remaining:
            code = (space.invite_code or "").upper()
            if code in seen or len(batch) == size:
                later.append(space)
            else:
                seen.add(code)
                batch.append(space)
        yield batch
        remaining = later


def _record_batch(batch: list[Space]) -> dict[str, str | None]:
    holders: dict[str, str | None] = {}
    pending = list(batch)
    for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        if not pending:
            break
        now = utc_now_iso()
        tx = Transaction()
        for space in pending:
            code = space.invite_code or ""
            tx.put(
                ("claim", space.id),
                CodeClaim.build(code, space.id, now),
                condition=CodeClaim.pk.does_not_exist() | (CodeClaim.space_id == space.id),
                return_old_on_failure=True,
            )
            tx.check(("space", space.id), Space(*Space.key(space.id)), _holds(code))
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            again = []
            for space in pending:
                if cancelled.failed(("claim", space.id)):
                    holder = cancelled.old_item(("claim", space.id)) or {}
                    holders[space.id] = holder.get("space_id", {}).get("S", "")
                elif cancelled.failed(("space", space.id)):
                    holders[space.id] = None  # its code changed since it was read
                else:
                    again.append(space)
            pending = again
            continue
        holders.update(dict.fromkeys((space.id for space in pending), None))
        pending = []
    if pending:
        raise InviteCodeUnavailable("Recording legacy codes kept being cancelled; try again")
    return holders


def invite_code_record_existing(*, space: Space) -> str | None:
    """One space's :func:`invite_codes_record_existing`."""
    return invite_codes_record_existing(spaces=[space]).get(space.id)


# --- resolving and joining ----------------------------------------------------------


def _claimed_space_id(code: str) -> str | None:
    try:
        return CodeClaim.get(*CodeClaim.key(code), consistent_read=True).space_id
    except DoesNotExist:
        return None


def _legacy_candidate_space_ids(code: str) -> Iterable[str]:
    """Spaces the earlier system's mappings name for ``code``: as typed, then upper and lower case.

    A generator: the caller stops at the first space that holds the code,
    so a code typed as stored costs one Query.
    """
    for variant in dict.fromkeys((code, code.upper(), code.lower())):
        for mapping in InviteMapping.query(keys.invite_pk(variant)):
            yield mapping.space_id


def _candidate_space_ids(code: str) -> Iterable[str]:
    """Where ``code`` may lead: its claim's space, then (codes without a working claim) legacy mappings.

    Codes written by another writer in the guide's layout have no claim,
    whenever they were written, so the fallback does not depend on the table
    flag. Every candidate must still hold the code to be accepted.
    """
    claimed = _claimed_space_id(code)
    if claimed is not None:
        yield claimed
    yield from (space_id for space_id in _legacy_candidate_space_ids(code) if space_id != claimed)


def invite_code_resolve(*, typed_code: str, user_id: str | None = None) -> tuple[Space, Membership | None]:
    """The space a typed code opens now, and the user's membership in it if any.

    Raises :class:`InvalidInviteCode` for malformed, unknown or stale codes.
    Round trips with a claimed code: the claim, and one strongly consistent
    batch read of the space and the membership.
    """
    code = _normalized(typed_code)
    with translate_unreachable():
        for space_id in _candidate_space_ids(code):
            space_key = Space.key(space_id)
            member_key = Membership.key(space_id, user_id) if user_id else None
            found = get_many([space_key, member_key] if member_key else [space_key])
            space = _space_from(found.get(space_key))
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
    """Join the space the code opens, as a member: one transaction.

    The membership is put only if it does not exist, and only while the space
    still holds the code used and is not owned by the caller; the space's
    member count moves in the same transaction (:func:`spaces.services.add_membership_to`).
    Round trips with a claimed code: the claim, the space, the transaction.
    """
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
                space_condition=_holds(space.invite_code)
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
    current = _space_from(cancelled.old_item("space"))
    if current is None or current.invite_code != space.invite_code or not code_works(current, now_epoch()):
        raise InvalidInviteCode() from None  # gone, replaced, expired, used up or paused before we joined
    return current  # its owner, its count or its limit changed: decide again
