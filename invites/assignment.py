"""Codes for many spaces at once: assign to those without one (backfill, audit, admin), record those held (audit)."""

from collections.abc import Callable, Iterable

from django.conf import settings

from invites import services as engine
from invites.policies import InvitePolicy
from invites.services import SpaceOutcome, Status
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
    """Give each space without a code one, only if it still has none when written, 33 a transaction. A cancellation
    is split by its reasons: a space another writer gave a code is SKIPPED, a collision draws again, a space gone or
    refused FAILED alone, the rest goes again. ``on_change`` hears each outcome at once."""
    wanting = [space for space in spaces if not space.invite_code]
    changes, check_legacy = list[SpaceOutcome](), not engine.legacy_codes_recorded()
    with translate_unreachable():
        for start in range(0, len(wanting), SPACES_PER_ASSIGNMENT):
            batch = wanting[start : start + SPACES_PER_ASSIGNMENT]
            for change in _assign_batch(batch, check_legacy, engine.code_setter(actor_id, source)):
                if change.applied:
                    engine.log_change(change, actor_id=actor_id, source=source)
                changes.append(change)
                if on_change is not None:
                    on_change(change)
    return changes


def _assign_batch(batch: list[Space], check_legacy: bool, set_by: str) -> list[SpaceOutcome]:
    settled, pending = list[SpaceOutcome](), list(batch)
    for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        if not pending:
            return settled
        drawn = _distinct_codes([space.id for space in pending], check_legacy)
        now = utc_now_iso()
        tx = Transaction()
        for space in pending:
            engine.claim_new(tx, ("claim", space.id), drawn[space.id], space.id, now)
            tx.put(("mapping", space.id), InviteMapping.build(drawn[space.id], space.id, now))
            # A first code starts with no policy, whatever another writer left on the space.
            actions = engine.code_actions(drawn[space.id], set_by, now, InvitePolicy())
            space_key, no_code = Space(*Space.key(space.id)), engine.holds(None)
            tx.update(("space", space.id), space_key, actions, condition=no_code, return_old_on_failure=True)
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            pending = _settle(cancelled, pending, settled)
            continue
        except Exception as exc:
            if error_code(exc) is None or is_unreachable(exc):
                raise  # not DynamoDB refusing the request: a network failure, or ours
            if len(pending) == 1:
                return [*settled, SpaceOutcome(pending[0].id, Status.FAILED, error=short_reason(exc))]
            # DynamoDB refused the request as a whole (one bad item makes the
            # transaction invalid): one transaction per space isolates the bad one.
            for space in pending:
                settled.extend(_assign_batch([space], check_legacy, set_by))
            return settled
        settled.extend(SpaceOutcome(space.id, Status.UPDATED, None, drawn[space.id]) for space in pending)
        return settled
    reason = f"No free invite code after {settings.INVITE_CODE_MAX_ATTEMPTS} attempts"
    return settled + [SpaceOutcome(space.id, Status.FAILED, error=reason) for space in pending]


def _distinct_codes(space_ids: list[str], check_legacy: bool) -> dict[str, str]:
    """A code per space, no two alike: two actions on one claim would make the transaction invalid."""
    drawn: set[str] = set()
    while len(drawn) < len(space_ids):
        drawn.add(engine.draw_code(check_legacy))
    return dict(zip(space_ids, drawn, strict=True))


def _settle(cancelled: TransactionCancelled, pending: list[Space], settled: list[SpaceOutcome]) -> list[Space]:
    """Settle the spaces whose outcome the cancellation decided; return those to try again."""
    again: list[Space] = []
    for space in pending:
        if cancelled.failed(("space", space.id)):
            current = engine.space_from(cancelled.old_item(("space", space.id)))
            if current is None:
                settled.append(SpaceOutcome(space.id, Status.FAILED, error=str(SpaceNotFound(space.id))))
            else:
                settled.append(SpaceOutcome(space.id, Status.SKIPPED, None, current.invite_code or None))
            continue
        if cancelled.failed(("claim", space.id)):
            engine.count_collision()
            again.append(space)
            continue
        actions = [("claim", space.id), ("mapping", space.id), ("space", space.id)]
        refusal = next((cancelled.reasons[name] for name in actions if name in cancelled.reasons), None)
        if refusal is not None and refusal.code not in TRANSIENT_REASONS:
            settled.append(SpaceOutcome(space.id, Status.FAILED, error=refusal.message or refusal.code))
            continue
        again.append(space)  # cancelled because of its neighbours, or a transient conflict
    return again


def invite_codes_record_existing(*, spaces: Iterable[Space]) -> dict[str, str | None]:
    """Claim the codes spaces hold (legacy data) while they hold them, 50 a transaction; idempotent. Per space id:
    the *other* space that claims the code, or None (ours now, or the space's code changed)."""
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
        firsts: dict[str, Space] = {}  # per code, the first space holding it
        for space in remaining:
            firsts.setdefault((space.invite_code or "").upper(), space)
        batch = list(firsts.values())[:size]
        yield batch
        taken = {space.id for space in batch}
        remaining = [space for space in remaining if space.id not in taken]


def _record_batch(batch: list[Space]) -> dict[str, str | None]:
    holders, pending = dict[str, str | None](), list(batch)
    for _round in range(settings.INVITE_CODE_MAX_ATTEMPTS):
        if not pending:
            return holders
        now = utc_now_iso()
        tx = Transaction()
        for space in pending:
            code = space.invite_code or ""
            ours = CodeClaim.pk.does_not_exist() | (CodeClaim.space_id == space.id)
            tx.put(
                ("claim", space.id), CodeClaim.build(code, space.id, now), condition=ours, return_old_on_failure=True
            )
            tx.check(("space", space.id), Space(*Space.key(space.id)), engine.holds(code))
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
        return holders | dict.fromkeys((space.id for space in pending), None)
    if pending:
        raise InviteCodeUnavailable("Recording legacy codes kept being cancelled; try again")
    return holders
