"""The backfill shared by ``manage.py backfill_invite_codes`` and the admin: one scan, its pages handed to the engine.
Nothing records progress: the engine writes only a space still without a code, so a rerun is the resume."""

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from invites import assignment, codes
from invites import services as engine
from invites.services import SpaceOutcome, Status
from spaces import keys
from spaces.dynamodb import get_many, scan_pages, short_reason, translate_unreachable
from spaces.exceptions import DynamoUnavailable, SpaceNotFound
from spaces.models import Space

PAGES_IN_FLIGHT = 3  # pages whose spaces are being written while the next is read: memory stays flat
REPLACE_CHUNK_SIZE = 5  # a regeneration is one transaction per space: small chunks spread them over the workers
WRITES_PER_SPACE = 3  # claim, mapping and the space (a regeneration also unmaps the old code)
Page = tuple[list[dict[str, Any]], int]  # raw space items, and the items DynamoDB read for them (every kind)
Emit = Callable[[SpaceOutcome], None]


@dataclass
class BackfillSummary:
    """What one run did; ``outcomes`` only with ``keep_outcomes=True``."""

    dry_run: bool = False
    replace_legacy_codes: bool = False
    scanned: int = 0  # spaces seen
    missing: int = 0  # of those, the ones wanting work (within ``limit``)
    updated: int = 0  # got a code (dry run: would get one)
    skipped: int = 0  # another writer gave them a code between the scan and the write
    failed: int = 0
    complete: bool = False  # read to the end, not cut by ``limit`` or ``deadline``
    seconds: float = 0.0
    failures: list[SpaceOutcome] = field(default_factory=list)
    outcomes: list[SpaceOutcome] = field(default_factory=list)


@dataclass
class RateLimiter:
    """A token bucket shared by threads: ``acquire(n)`` blocks until ``n`` item writes may go (``n`` may exceed it)."""

    per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.paid_until = self.clock() - 1 / self.per_second  # when the writes so far fit the rate: one goes at once

    def acquire(self, count: int = 1) -> None:
        with self.lock:
            now = self.clock()
            saved_up = max(1.0, 1 / self.per_second)  # seconds of unused rate kept: a second's worth, or one write
            self.paid_until = max(self.paid_until, now - saved_up) + count / self.per_second
            wait = self.paid_until - now
        if wait > 1e-9:  # float rounding
            self.sleep(wait)


def backfill_missing_codes(
    *,
    dry_run: bool = False,
    limit: int | None = None,
    space_ids: list[str] | None = None,
    workers: int | None = None,
    segment: int | None = None,
    total_segments: int | None = None,
    replace_legacy_codes: bool = False,
    deadline: float | None = None,
    max_writes_per_second: float | None = None,
    on_outcome: Emit | None = None,
    on_page: Callable[[int, int], None] | None = None,
    keep_outcomes: bool = False,
    actor_id: str | None = None,
    source: str = "backfill",
) -> BackfillSummary:
    """Give every space without a code one (``replace_legacy_codes``: a new code to each legacy-format one). After
    ``deadline`` (a ``time.monotonic()`` value) no new chunk starts; ``on_page`` hears (spaces, items read) per page.
    Raises :class:`DynamoUnavailable` when DynamoDB cannot be reached."""
    started = time.monotonic()
    summary = BackfillSummary(dry_run=dry_run, replace_legacy_codes=replace_legacy_codes)
    emit = _tally(summary, keep_outcomes, on_outcome)
    work = _worker(emit, summary, deadline, max_writes_per_second, actor_id=actor_id, source=source)
    size = REPLACE_CHUNK_SIZE if replace_legacy_codes else assignment.SPACES_PER_ASSIGNMENT
    pages = _targeted(emit, space_ids) if space_ids is not None else _scan(segment, total_segments)
    pool = ThreadPoolExecutor(max_workers=workers or settings.BACKFILL_WORKERS, thread_name_prefix="backfill")
    complete, in_flight, allowance = True, deque[Iterator[bool]](), limit
    try:
        for raw_items, items_read in pages:
            wanted = [Space.from_raw_data(raw) for raw in raw_items if _wants(raw, replace_legacy_codes)]
            if allowance is not None:
                wanted = wanted[:allowance]
                allowance -= len(wanted)
            summary.scanned += len(raw_items)  # only this thread writes these two
            summary.missing += len(wanted)
            if len(in_flight) == PAGES_IN_FLIGHT:  # memory stays flat; a worker's exception ends the run here
                complete = all([*in_flight.popleft()]) and complete
            in_flight.append(pool.map(work, [wanted[start : start + size] for start in range(0, len(wanted), size)]))
            if on_page is not None:
                on_page(len(raw_items), items_read)
            if allowance == 0 or (deadline is not None and time.monotonic() >= deadline):
                complete = False
                break
        summary.complete = all([ok for page in in_flight for ok in page]) and complete
    finally:
        pool.shutdown(cancel_futures=True)
    summary.seconds = time.monotonic() - started
    return summary


def _tally(summary: BackfillSummary, keep_outcomes: bool, on_outcome: Emit | None) -> Emit:
    """What the workers call with each outcome: counted into ``summary``, then passed on, one at a time."""
    lock = threading.Lock()

    def emit(outcome: SpaceOutcome) -> None:
        with lock:
            counter = {Status.FAILED: "failed", Status.SKIPPED: "skipped"}.get(outcome.status, "updated")
            setattr(summary, counter, getattr(summary, counter) + 1)
            if outcome.status is Status.FAILED:
                summary.failures.append(outcome)
            if keep_outcomes:
                summary.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)

    return emit


def _worker(
    emit: Emit, summary: BackfillSummary, deadline: float | None, rate: float | None, **engine_args: Any
) -> Callable[[list[Space]], bool]:
    """What a worker does with a chunk of spaces (as ``summary`` says): False if past the deadline, doing nothing."""
    pace = RateLimiter(rate).acquire if rate else lambda count=1: None  # ``rate``: item writes per second

    def work(chunk: list[Space]) -> bool:
        if deadline is not None and time.monotonic() >= deadline:
            return False
        if summary.dry_run:
            for space in chunk:
                emit(SpaceOutcome(space.id, Status.WOULD_UPDATE, old_code=space.invite_code, name=space.name or ""))
        elif summary.replace_legacy_codes:
            for space in chunk:
                pace(WRITES_PER_SPACE + 1)
                try:  # switches the space only from ``old``, the code the scan read: a lost race is skipped
                    outcome = engine.invite_code_regenerate(space_id=space.id, space=space, **engine_args)
                except DynamoUnavailable:
                    raise
                except Exception as exc:  # reported per space, the run goes on
                    outcome = SpaceOutcome(space.id, Status.FAILED, error=short_reason(exc))
                emit(dataclasses.replace(outcome, old_code=space.invite_code, name=space.name or ""))
        elif chunk:
            pace(WRITES_PER_SPACE * len(chunk))
            names = {space.id: space.name or "" for space in chunk}
            assignment.invite_code_assign_if_missing(
                spaces=chunk, on_change=lambda o: emit(dataclasses.replace(o, name=names[o.space_id])), **engine_args
            )
        return True

    return work


def _wants(raw: dict[str, Any], replace: bool) -> bool:
    code = raw.get("invite_code", {}).get("S") or ""
    return bool(code) and not codes.is_new_format(code) if replace else not code


def _targeted(emit: Emit, space_ids: list[str]) -> Iterator[Page]:
    """The named spaces as one page (one BatchGetItem); an unknown id fails alone."""
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in space_ids])
    named = {space_id: found.get(Space.key(space_id)) for space_id in space_ids}
    for space_id in [space_id for space_id, raw in named.items() if raw is None]:
        emit(SpaceOutcome(space_id, Status.FAILED, error=str(SpaceNotFound(space_id))))
    yield [raw for raw in named.values() if raw is not None], len(named)


def _scan(segment: int | None, total_segments: int | None) -> Iterator[Page]:
    """Pages of raw space items (one segment's when split), with the items DynamoDB read for each."""
    spaces_only, fields = Space.sk == keys.SPACE_METADATA_SK, ["PK", "SK", "id", "name", "invite_code"]
    for page in scan_pages(segment, total_segments, filter_condition=spaces_only, attributes_to_get=fields):
        items = page.get("Items", [])
        yield items, int(page.get("ScannedCount", len(items)))
