"""The invite-code engine: create a space with its code, regenerate, change a policy (joining and bulk
assignment are beside it). Every operation is one transaction plus the reads it needs; a code is unique by
construction (``CODE#`` claims, put only if absent, never deleted); every switch is conditional on the code read."""

import logging
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, cast

from django.conf import settings
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from invites import codes
from invites.policies import InvitePolicy, expiry_in, policy_actions
from operations import metrics
from spaces import keys
from spaces.dynamodb import table_name, translate_unreachable
from spaces.exceptions import InviteCodeUnavailable, NoInviteCode, SpaceNotFound
from spaces.ids import new_space_id
from spaces.models import ROLE_OWNER, CodeClaim, InviteMapping, Membership, Space, utc_now_iso
from spaces.selectors import space_get
from spaces.table import table_flag_is_set
from spaces.transactions import Transaction, TransactionCancelled

logger = logging.getLogger("invites")

LEGACY_CODES_RECORDED = keys.LEGACY_CODES_RECORDED_FLAG


class Status(StrEnum):
    UPDATED = "updated"
    WOULD_UPDATE = "would_update"  # a dry run's answer
    SKIPPED = "skipped_already_had_code"  # another writer gave the space a code first
    FAILED = "failed"


@dataclass(frozen=True)
class SpaceOutcome:
    """What an operation did (or, in a dry run, would do) to one space: every front door's one shape."""

    space_id: str
    status: Status
    old_code: str | None = None
    new_code: str | None = None  # the code the space holds now, when known
    error: str | None = None  # why it failed (short_reason's one line)
    name: str = ""
    space: Space | None = field(default=None, compare=False)  # as stored now, when the operation knows it

    @property
    def applied(self) -> bool:
        return self.status is Status.UPDATED


_RECORDED_TABLES: set[str] = set()  # only a positive answer is kept: the flag is never unset


def legacy_codes_recorded() -> bool:
    """Every code has a claim (set at creation or by ``audit_invite_codes --repair``); else draws check INVITE#."""
    if table_name() not in _RECORDED_TABLES and table_flag_is_set(LEGACY_CODES_RECORDED):
        _RECORDED_TABLES.add(table_name())
    return table_name() in _RECORDED_TABLES


def _legacy_mapping_exists(code: str) -> bool:
    """True when the earlier system mapped ``code`` (as drawn, or in lower case) to a space."""
    return any(
        any(True for _ in InviteMapping.query(keys.invite_pk(variant), limit=1))
        for variant in dict.fromkeys((code, code.lower()))
    )


def draw_code(check_legacy: bool) -> str:
    """A fresh code; the caller's transaction claims it."""
    for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        code = codes.generate_code()
        if not (check_legacy and _legacy_mapping_exists(code)):
            return code
        logger.info("Invite code collision with a legacy mapping; drawing again")
        metrics.invite_code_collisions.labels(kind="legacy_mapping").inc()
    raise InviteCodeUnavailable(f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts")


def claim_new(tx: Transaction, name: Any, code: str, space_id: str, now: str) -> None:
    tx.put(name, CodeClaim.build(code, space_id, now), condition=CodeClaim.pk.does_not_exist())


def count_collision() -> None:
    logger.info("Invite code collision with an existing claim; drawing again")
    metrics.invite_code_collisions.labels(kind="claim").inc()


def holds(code: str | None) -> Condition:
    """The space exists and holds exactly ``code`` (None: no code at all)."""
    held = (Space.invite_code == code) if code else Space.invite_code.does_not_exist() | (Space.invite_code == "")
    return cast(Condition, Space.pk.exists() & held)


def log_change(change: SpaceOutcome, *, actor_id: str | None, source: str) -> None:
    # Codes are secrets that open spaces: the log names them by fingerprint only (the backfill command prints
    # the codes it set on its own output).
    old, new, by = codes.fingerprint(change.old_code), codes.fingerprint(change.new_code), actor_id or "system"
    logger.info("Invite code of space %s changed from %s to %s by %s via %s", change.space_id, old, new, by, source)
    metrics.invite_codes_generated.inc()
    metrics.invite_code_changes.labels(source=source).inc()


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
    space_id, check_legacy = new_space_id(), not legacy_codes_recorded()
    fields = dict(name=name, description=description, space_type=space_type, is_public=is_public, owner_id=owner_id)
    with translate_unreachable():
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            code, now = draw_code(check_legacy), utc_now_iso()
            space = Space.build(space_id, **fields, metadata=metadata or None, invite_code=code, invite_set_by=owner_id)
            space.member_count, space.created_at, space.updated_at = 1, now, now
            tx = Transaction()
            tx.put("space", space, condition=Space.pk.does_not_exist())
            tx.put("owner", Membership.build(space_id, owner_id, ROLE_OWNER, now))
            claim_new(tx, "claim", code, space_id, now)
            tx.put("mapping", InviteMapping.build(code, space_id, now))
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("claim"):
                    count_collision()
                    continue
                raise
            metrics.invite_codes_generated.inc()
            return space
    raise InviteCodeUnavailable(f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts")


def space_from(raw: dict[str, Any] | None) -> Space | None:
    return Space.from_raw_data(raw) if raw else None


def code_setter(actor_id: str | None, source: str) -> str:
    """Who a space's members will see set its code: the API's user, else the source (``admin``, ``backfill``)."""
    return actor_id if source == "api" and actor_id else source


def invite_code_regenerate(
    *,
    space_id: str,
    space: Space | None = None,
    actor_id: str | None = None,
    source: str = "api",
    policy: InvitePolicy | None = None,
) -> SpaceOutcome:
    """Give the space a new code with ``policy`` (default none); the old code stops working at once. ``space``: just
    read (strongly consistent), saving a round trip. A rival regeneration that wins is returned (SKIPPED, with the
    space as stored): its code is as fresh for this request as ours."""
    check_legacy, policy, set_by = not legacy_codes_recorded(), policy or InvitePolicy(), code_setter(actor_id, source)
    with translate_unreachable():
        if space is None:
            space = space_get(space_id=space_id)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            old_code = space.invite_code or None
            new_code = draw_code(check_legacy)
            try:
                _regeneration(space_id, old_code, new_code, policy, set_by).commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("space"):
                    current = space_from(cancelled.old_item("space"))
                    if current is None:
                        raise SpaceNotFound(space_id) from None
                    if current.invite_code and current.invite_code != old_code:
                        return SpaceOutcome(space_id, Status.SKIPPED, old_code, current.invite_code, space=current)
                    space = current
                    continue
                if cancelled.failed("claim"):
                    count_collision()
                    continue
                raise
            stored = Space.from_raw_data(space.serialize())  # the space as the regeneration stored it
            stored.invite_code, stored.invite_uses, stored.invite_set_by = new_code, None, set_by
            _set_policy(stored, policy)
            change = SpaceOutcome(space_id, Status.UPDATED, old_code, new_code, space=stored)
            log_change(change, actor_id=actor_id, source=source)
            return change
    raise InviteCodeUnavailable(f"Space {space_id} kept changing; try again")


def _set_policy(space: Space, policy: InvitePolicy) -> None:
    """The space object as ``policy_actions(policy)`` left its item."""
    space.invite_expires_at, space.invite_max_uses = policy.expires_at, policy.max_uses
    space.invite_paused, space.invite_role = policy.paused or None, policy.stored_role


def code_actions(code: str, set_by: str, now: str, policy: InvitePolicy) -> list[Action]:
    """The update actions that give a space ``code``, set by ``set_by``, with ``policy`` and no use counted yet."""
    switch = [Space.invite_code.set(code), Space.invite_set_by.set(set_by), Space.updated_at.set(now)]
    return [*switch, *policy_actions(policy, reset_uses=True)]


def _regeneration(space_id: str, old_code: str | None, new_code: str, policy: InvitePolicy, set_by: str) -> Transaction:
    """Claim ``new_code``, map it, switch the space from ``old_code`` to it with ``policy``, unmap ``old_code``."""
    now = utc_now_iso()
    tx = Transaction()
    claim_new(tx, "claim", new_code, space_id, now)
    tx.put("mapping", InviteMapping.build(new_code, space_id, now))
    actions = code_actions(new_code, set_by, now, policy)
    tx.update("space", Space(*Space.key(space_id)), actions, condition=holds(old_code), return_old_on_failure=True)
    if old_code:
        tx.delete("old mapping", InviteMapping(*InviteMapping.key(old_code, space_id)))
    return tx


UNCHANGED = object()


def invite_code_policy_update(
    *,
    space_id: str,
    space: Space | None = None,
    expires_in: Any = UNCHANGED,
    max_uses: Any = UNCHANGED,
    paused: Any = UNCHANGED,
    role: Any = UNCHANGED,
    actor_id: str | None = None,
) -> Space:
    """Change the current code's policy (``UNCHANGED`` fields keep theirs); ``expires_in`` counts from now. Conditional
    on the code read: a code replaced meanwhile gets the change. :class:`NoInviteCode` without a code."""
    with translate_unreachable():
        if space is None:
            space = space_get(space_id=space_id)
        for _attempt in range(settings.INVITE_CODE_MAX_ATTEMPTS):
            if not space.invite_code:
                raise NoInviteCode(space_id)
            policy = _changed_policy(InvitePolicy.of(space), expires_in, max_uses, paused, role)
            tx, space_key = Transaction(), Space(*Space.key(space_id))
            actions = [*policy_actions(policy, reset_uses=False), Space.updated_at.set(utc_now_iso())]
            tx.update("space", space_key, actions, condition=holds(space.invite_code), return_old_on_failure=True)
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                current = space_from(cancelled.old_item("space"))
                if current is None:
                    raise SpaceNotFound(space_id) from None
                space = current
                continue
            code, by = codes.fingerprint(space.invite_code), actor_id or "system"
            text = "Invite policy of space %s (%s) set by %s: expires_at=%s max_uses=%s paused=%s role=%s"
            logger.info(text, space.id, code, by, policy.expires_at, policy.max_uses, policy.paused, policy.role)
            _set_policy(space, policy)
            return space
    raise InviteCodeUnavailable(f"Space {space_id} kept changing; try again")


def _changed_policy(current: InvitePolicy, expires_in: Any, max_uses: Any, paused: Any, role: Any) -> InvitePolicy:
    if expires_in is not UNCHANGED:
        current = replace(current, expires_at=expiry_in(expires_in))
    if max_uses is not UNCHANGED:
        current = replace(current, max_uses=None if max_uses is None else int(max_uses))
    if paused is not UNCHANGED:
        current = replace(current, paused=bool(paused))
    if role is not UNCHANGED:
        current = replace(current, role=role)
    return current
