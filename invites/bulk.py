"""Invite-code changes on a selection of spaces (the admin's bulk actions).

Each function reads the selected spaces in one strongly consistent batch and
hands them to the engine (:mod:`invites.services`); it never writes an item
itself. One space failing does not stop the others, except when DynamoDB
cannot be reached at all: then the rest is reported as not attempted instead
of waiting for each to time out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pynamodb.exceptions import PynamoDBException

from invites.audit import AuditReport, audit_invite_codes
from invites.backfill import BackfillReport, backfill_missing_codes
from invites.selectors import space_page, spaces_for_ids
from invites.services import CodeChange, invite_code_assign_if_missing, invite_code_regenerate
from spaces.dynamodb import DynamoUnavailable, short_reason
from spaces.exceptions import DomainError
from spaces.models import Space


@dataclass(frozen=True)
class SpaceFailure:
    space_id: str
    name: str
    error: str


@dataclass
class BulkOutcome:
    changed: list[tuple[Space, CodeChange]] = field(default_factory=list)
    # Spaces deliberately left alone, with the reason in words.
    left_alone: list[tuple[Space, str]] = field(default_factory=list)
    failed: list[SpaceFailure] = field(default_factory=list)


def _reason(exc: Exception) -> str:
    # Domain errors are written for people; DynamoDB's own errors need their root cause.
    return short_reason(exc) if isinstance(exc, PynamoDBException) else str(exc)


def _selected_spaces(space_ids: list[str], outcome: BulkOutcome) -> list[Space]:
    found = spaces_for_ids(space_ids=space_ids)
    for space_id in dict.fromkeys(space_ids):
        if space_id not in found:
            outcome.failed.append(SpaceFailure(space_id, "", f"Space {space_id} not found"))
    return [found[space_id] for space_id in dict.fromkeys(space_ids) if space_id in found]


def invite_codes_add_missing(*, space_ids: list[str], actor_id: str | None, source: str) -> BulkOutcome:
    """Give a code to each selected space that has none; spaces with a code are never touched."""
    outcome = BulkOutcome()
    spaces = _selected_spaces(space_ids, outcome)
    wanting = []
    for space in spaces:
        if space.invite_code:
            outcome.left_alone.append((space, "it already has an invite code"))
        else:
            wanting.append(space)
    if not wanting:
        return outcome
    try:
        changes = invite_code_assign_if_missing(spaces=wanting, actor_id=actor_id, source=source)
    except (DomainError, PynamoDBException) as exc:
        outcome.failed.extend(SpaceFailure(space.id, space.name or "", _reason(exc)) for space in wanting)
        return outcome
    by_id = {space.id: space for space in wanting}
    for change in changes:
        space = by_id[change.space_id]
        if change.applied:
            outcome.changed.append((space, change))
        elif change.error:
            outcome.failed.append(SpaceFailure(space.id, space.name or "", change.error))
        else:
            outcome.left_alone.append((space, "it received an invite code from someone else meanwhile"))
    return outcome


def invite_codes_regenerate_many(
    *,
    space_ids: list[str],
    expected_codes: dict[str, str | None],
    actor_id: str | None,
    source: str,
) -> BulkOutcome:
    """Regenerate the code of each selected space whose code is still the one the caller confirmed.

    ``expected_codes`` maps a space id to the code shown when the caller
    confirmed (None: it had none); a space whose code has changed since is
    left alone, so nobody kills a code they have not seen.
    """
    outcome = BulkOutcome()
    spaces = _selected_spaces(space_ids, outcome)
    for index, space in enumerate(spaces):
        if space.id in expected_codes and (space.invite_code or None) != expected_codes[space.id]:
            outcome.left_alone.append((space, "its invite code changed after you confirmed"))
            continue
        try:
            change = invite_code_regenerate(space_id=space.id, space=space, actor_id=actor_id, source=source)
        except DynamoUnavailable as exc:
            outcome.failed.append(SpaceFailure(space.id, space.name or "", str(exc)))
            outcome.failed.extend(
                SpaceFailure(other.id, other.name or "", "not attempted: DynamoDB cannot be reached")
                for other in spaces[index + 1 :]
            )
            break
        except (DomainError, PynamoDBException) as exc:
            outcome.failed.append(SpaceFailure(space.id, space.name or "", _reason(exc)))
            continue
        if change.applied:
            outcome.changed.append((space, change))
        else:
            outcome.left_alone.append((space, "someone else regenerated its invite code at the same moment"))
    return outcome


def invite_codes_audit_repair() -> tuple[AuditReport, list[tuple[Space, CodeChange]]]:
    """Run the audit with repair, and say which spaces' codes the repair changed.

    The audit reports counts per problem kind; the admin log wants one entry
    per space whose code changed (old -> new). The spaces that a repair may
    give a new code are those without one, those sharing a code and those
    whose code had no claim; they are re-read after the repair and compared.
    """
    report = audit_invite_codes(repair=True)
    before: dict[str, str | None] = {space_id: None for space_id in report.spaces_without_code}
    for code, space_ids in report.duplicate_codes:
        before.update(dict.fromkeys(space_ids, code))
    before.update(dict(report.missing_claims))
    if not before:
        return report, []
    now = spaces_for_ids(space_ids=list(before))
    changed = [
        (space, CodeChange(space.id, before[space.id], space.invite_code))
        for space in now.values()
        if (space.invite_code or None) != before[space.id]
    ]
    return report, changed


# The admin's backfill writes in chunks and starts no new chunk once its time
# budget is spent, so a request ends within seconds whatever DynamoDB's speed.
BACKFILL_CHUNK = 50


@dataclass(frozen=True)
class BackfillBatch:
    """One capped backfill request of the admin: what the bounded scan found and what the backfill did."""

    report: BackfillReport
    found: int  # spaces without a code found by this request's scan (at most the cap)
    handled: int  # of those, the spaces handed to the backfill before the time budget ran out
    # False when the scan stopped at the cap or at its request budget: more may lack a code.
    scan_reached_the_end: bool
    # Set when DynamoDB became unreachable part way: the report holds what was done before.
    error: str | None = None

    @property
    def more_may_remain(self) -> bool:
        return not self.scan_reached_the_end or self.handled < self.found or self.error is not None


def invite_codes_backfill_batch(
    *, dry_run: bool, cap: int, seconds: float, actor_id: str | None, source: str
) -> BackfillBatch:
    """Find up to ``cap`` spaces without a code with a bounded Scan, then backfill those, within ``seconds``.

    The backfill service's own table scan reads until it has found its limit,
    which on a large table with few spaces left to fix is most of the table:
    too long for a web request. The admin's list scan has a request budget
    (``invites.selectors.MAX_SCAN_REQUESTS_PER_PAGE``); the targeted backfill
    re-reads the spaces strongly consistently and never touches one that has
    a code by then. Writes go in chunks; no chunk starts after ``seconds``.
    Outcomes are counted as they happen (``on_space``), so a DynamoDB that
    goes away part way still leaves an exact account of what was changed.
    """
    started = time.monotonic()
    page = space_page(page_size=cap, has_code=False)
    space_ids = [space.id for space in page.spaces]
    total = BackfillReport(dry_run=dry_run)
    handled, error = 0, None
    for chunk in _backfill_chunks(space_ids, dry_run=dry_run):
        if handled and time.monotonic() - started > seconds:
            break
        handled += len(chunk)
        try:
            backfill_missing_codes(
                dry_run=dry_run,
                space_ids=chunk,
                limit=len(chunk),
                actor_id=actor_id,
                source=source,
                on_space=total.count,
                collect_changes=False,
            )
        except DynamoUnavailable as exc:
            error = str(exc)
            break
    total.total_spaces = total.missing = handled
    total.complete = page.next_cursor is None and handled == len(space_ids) and error is None
    total.seconds = time.monotonic() - started
    return BackfillBatch(
        report=total,
        found=len(space_ids),
        handled=handled,
        scan_reached_the_end=page.next_cursor is None,
        error=error,
    )


def _backfill_chunks(space_ids: list[str], *, dry_run: bool) -> Iterator[list[str]]:
    """A dry run writes nothing and takes one chunk; a real run goes in chunks of :data:`BACKFILL_CHUNK`."""
    chunk_size = max(len(space_ids) if dry_run else BACKFILL_CHUNK, 1)
    for start in range(0, len(space_ids), chunk_size):
        yield space_ids[start : start + chunk_size]
