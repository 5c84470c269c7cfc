"""Codes for many spaces at once: assign to those without one (backfill, audit, admin), record those held (audit)."""

from collections.abc import Callable, Iterable

from django.conf import settings

from invites.policies import InvitePolicy, policy_actions
from invites.services import (
    SpaceOutcome,
    Status,
    claim_new,
    count_collision,
    draw_code,
    holds,
    legacy_codes_recorded,
    log_change,
    space_from,
)
from spaces.dynamodb import error_code, is_unreachable, short_reason, translate_unreachable
from spaces.exceptions import InviteCodeUnavailable, SpaceNotFound
from spaces.models import CodeClaim, InviteMapping, Space, utc_now_iso
from spaces.transactions import TRANSIENT_REASONS, Transaction, TransactionCancelled

# Three actions a space (claim, mapping, switch); DynamoDB takes 100 per transaction.
SPACES_PER_ASSIGNMENT = 33
# Two actions a space (claim, check of the space's code).
SPACES_PER_RECORDING = 50


def invite_code_assign_if_missing(
    *,
    spaces: list[Space],
    actor_id: str | None = None,
    source: str = "backfill",
    on_change: Callable[[SpaceOutcome], None] | None = None,
) -> list[SpaceOutcome]:
    """Give each space without a code one, only if it still has none when written, 33 a transaction.

    A cancellation is split by its reasons: a space another writer gave a code is SKIPPED, a collision draws
    again, a space gone or refused FAILED alone, the rest goes again. ``on_change`` hears each outcome at once.
    """
    wanting = [space for space in spaces if not space.invite_code]
    changes: list[SpaceOutcome] = []
    check_legacy = not legacy_codes_recorded()
    with translate_unreachable():
        for start in range(0, len(wanting), SPACES_PER_ASSIGNMENT):
            for change in _assign_batch(wanting[start : start + SPACES_PER_ASSIGNMENT], check_legacy):
                if change.applied:
                    log_change(change, actor_id=actor_id, source=source)
                changes.append(change)
                if on_change is not None:
                    on_change(change)
    return changes


def _assign_batch(batch: list[Space], check_legacy: bool) -> list[SpaceOutcome]:
    settled: list[SpaceOutcome] = []
    pending = list(batch)
    for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        if not pending:
            return settled
        drawn = _distinct_codes([space.id for space in pending], check_legacy)
        now = utc_now_iso()
        tx = Transaction()
        for space in pending:
            claim_new(tx, ("claim", space.id), drawn[space.id], space.id, now)
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
                condition=holds(None),
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
                return [*settled, SpaceOutcome(pending[0].id, Status.FAILED, error=short_reason(exc))]
            # DynamoDB refused the request as a whole (one bad item makes the
            # transaction invalid): one transaction per space isolates the bad one.
            for space in pending:
                settled.extend(_assign_batch([space], check_legacy))
            return settled
        settled.extend(SpaceOutcome(space.id, Status.UPDATED, None, drawn[space.id]) for space in pending)
        return settled
    reason = f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts"
    return settled + [SpaceOutcome(space.id, Status.FAILED, error=reason) for space in pending]


def _distinct_codes(space_ids: list[str], check_legacy: bool) -> dict[str, str]:
    """A code per space, no two alike: two actions on one claim would make the transaction invalid."""
    drawn: dict[str, str] = {}
    for space_id in space_ids:
        code = draw_code(check_legacy)
        while code in drawn.values():
            code = draw_code(check_legacy)
        drawn[space_id] = code
    return drawn


def _split_assignment(
    cancelled: TransactionCancelled, pending: list[Space], settled: list[SpaceOutcome]
) -> list[Space]:
    """Settle the spaces whose outcome the cancellation decided; return those to try again."""
    again: list[Space] = []
    for space in pending:
        if cancelled.failed(("space", space.id)):
            current = space_from(cancelled.old_item(("space", space.id)))
            if current is None:
                settled.append(SpaceOutcome(space.id, Status.FAILED, error=str(SpaceNotFound(space.id))))
            else:
                settled.append(SpaceOutcome(space.id, Status.SKIPPED, None, current.invite_code or None))
            continue
        if cancelled.failed(("claim", space.id)):
            count_collision()
            again.append(space)
            continue
        refusal = next(
            (cancelled.reasons[name] for name in _assignment_actions(space.id) if name in cancelled.reasons), None
        )
        if refusal is not None and refusal.code not in TRANSIENT_REASONS:
            settled.append(SpaceOutcome(space.id, Status.FAILED, error=refusal.message or refusal.code))
            continue
        again.append(space)  # cancelled because of its neighbours, or a transient conflict
    return again


def _assignment_actions(space_id: str) -> tuple[tuple[str, str], ...]:
    return ("claim", space_id), ("mapping", space_id), ("space", space_id)


def _is_refusal(exc: BaseException) -> bool:
    """DynamoDB answered and refused the request (as opposed to a network failure)."""
    return error_code(exc) is not None and not is_unreachable(exc)


def invite_codes_record_existing(*, spaces: Iterable[Space]) -> dict[str, str | None]:
    """Claim the codes spaces hold (legacy data) while they hold them, 50 a transaction; idempotent.

    Per space id: the *other* space that claims the code, or None (ours now, or the space's code changed).
    """
    holding = [space for space in spaces if space.invite_code]
    holders: dict[str, str | None] = {}
    with translate_unreachable():
        for batch in _batches_with_distinct_codes(holding, SPACES_PER_RECORDING):
            holders.update(_record_batch(batch))
    return holders


def _batches_with_distinct_codes(spaces: list[Space], size: int) -> Iterable[list[Space]]:
    """Batches in which no two spaces hold the same code (two actions on one claim make a transaction invalid)."""
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
            tx.check(("space", space.id), Space(*Space.key(space.id)), holds(code))
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
