"""The scan -> assign pipeline: :func:`backfill_missing_codes`.

How it works (docs/backfill.md has the operator's view):

* Streaming: each scan segment is read page by page (``Limit`` items per
  page, projected to the few attributes needed); a page's spaces without a
  code are handed to a pool of workers in chunks of :data:`CHUNK_SIZE` while
  the next page is being read. At most two pages per segment are in memory.
* Every write goes through the engine's ``invite_code_assign_if_missing``:
  one transaction per chunk of 33 spaces (claim, mapping and a switch
  conditional on the space still having no code, for each), no per-space
  read. A space that got a code after the scan keeps it
  (``skipped_already_had_code``); a space DynamoDB refuses fails alone.
  A kill at any moment leaves each chunk applied whole or not at all.
* Resumable: after a page is fully handled, the checkpoint file (if any) is
  atomically rewritten with that segment's ``LastEvaluatedKey``
  (:mod:`invites.backfill.checkpoint`).
* Throttling is retried by botocore (the command turns on adaptive retries);
  ``max_writes_per_second`` adds an explicit token bucket on this run's
  item writes only (:mod:`invites.backfill.rate_limit`).
* On a table whose legacy codes are not yet recorded, codes found on spaces
  are claimed as the scan passes them, and a complete, failure-free,
  untargeted run over every segment sets the table flag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings

from invites import services as engine
from invites.backfill.checkpoint import Checkpoint
from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.rate_limit import RateLimiter, limiting_this_thread, write_limiter
from invites.backfill.report import BackfillReport, SpaceOutcome
from spaces import keys
from spaces.dynamodb import (
    DynamoUnavailable,
    current_binding,
    get_many,
    short_reason,
    table_connection,
    translate_unreachable,
)
from spaces.exceptions import DomainError
from spaces.ids import is_valid_space_id
from spaces.models import Space

# One transaction per chunk: three actions a space, DynamoDB takes 100 (engine.SPACES_PER_ASSIGNMENT).
CHUNK_SIZE = engine.SPACES_PER_ASSIGNMENT
# Only what the backfill reads: keys, name (for logs and reports) and the code.
SCANNED_ATTRIBUTES = ("PK", "SK", "id", "name", "invite_code")


def backfill_missing_codes(
    *,
    dry_run: bool,
    limit: int | None = None,
    space_ids: list[str] | None = None,
    segments: int | None = None,
    workers: int | None = None,
    segment: int | None = None,
    total_segments: int | None = None,
    max_writes_per_second: float | None = None,
    checkpoint_path: str | None = None,
    on_space: Callable[[SpaceOutcome], None] | None = None,
    actor_id: str | None = None,
    source: str = "backfill",
    collect_changes: bool = True,
    page_size: int | None = None,
) -> BackfillReport:
    """Give every space without an invite code one; never touch a space that has one.

    ``limit`` stops after that many spaces without a code were handled;
    ``space_ids`` targets those spaces only (no scan); ``segment`` and
    ``total_segments`` restrict the scan to one slice of a backfill split
    over several machines. ``on_space`` hears each :class:`SpaceOutcome` as it
    happens; ``collect_changes=False`` keeps ``report.changes`` empty, so a run
    over millions of spaces does not keep every change in memory. Raises
    :class:`BackfillConfigError` for unusable arguments and
    :class:`DynamoUnavailable` when DynamoDB cannot be reached.
    """
    job = _Job(
        dry_run=dry_run,
        limit=limit,
        space_ids=space_ids,
        segments=segments or settings.BACKFILL_SEGMENTS,
        workers=workers or settings.BACKFILL_WORKERS,
        segment=segment,
        total_segments=total_segments,
        checkpoint_path=checkpoint_path,
        page_size=page_size or settings.BACKFILL_PAGE_SIZE,
        collect_changes=collect_changes,
        actor_id=actor_id,
        source=source,
    )
    job.validate()
    started = time.monotonic()
    limiter = write_limiter(max_writes_per_second)
    record_legacy = not engine.legacy_codes_recorded()
    with ThreadPoolExecutor(max_workers=job.workers, thread_name_prefix="backfill-worker") as pool:
        run = _Run(job, record_legacy=record_legacy, limiter=limiter, on_space=on_space, workers=pool)
        complete = _run_targeted(run) if job.space_ids is not None else _run_scan(run)
    if run.fatal is not None:
        raise run.fatal
    run.report.complete = complete
    run.report.seconds = time.monotonic() - started
    return run.report


@dataclass(frozen=True)
class _Job:
    """What one backfill was asked to do, with the defaults from settings filled in."""

    dry_run: bool
    limit: int | None
    space_ids: list[str] | None
    segments: int
    workers: int
    segment: int | None
    total_segments: int | None
    checkpoint_path: str | None
    page_size: int
    collect_changes: bool
    actor_id: str | None
    source: str

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise BackfillConfigError("limit must be at least 1")
        if self.segments < 1 or self.workers < 1:
            raise BackfillConfigError("segments and workers must be at least 1")
        if (self.segment is None) != (self.total_segments is None):
            raise BackfillConfigError("segment and total segments go together")
        if self.total_segments is not None and self.segment is not None and not 0 <= self.segment < self.total_segments:
            raise BackfillConfigError(f"segment must be between 0 and {(self.total_segments or 1) - 1}")
        if self.space_ids is not None:
            bad = [space_id for space_id in self.space_ids if not is_valid_space_id(space_id)]
            if bad:
                raise BackfillConfigError(f"not a space id: {bad[0]!r}")
            if self.checkpoint_path or self.segment is not None:
                raise BackfillConfigError("space ids cannot be combined with a checkpoint or a segment")
        if self.dry_run and self.checkpoint_path:
            raise BackfillConfigError("a dry run does not write a checkpoint; drop the checkpoint file")

    def plan(self) -> tuple[list[int], int]:
        """The segments this machine scans, and how many segments the table is split into."""
        if self.segment is not None and self.total_segments is not None:
            return [self.segment], self.total_segments
        return list(range(self.segments)), self.segments


# --- the two ways through the table ------------------------------------------------------------


def _run_targeted(run: _Run) -> bool:
    """Handle the named spaces (one BatchGetItem, no scan); True unless ``limit`` cut the run short."""
    unique_ids = list(dict.fromkeys(run.job.space_ids or ()))
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in unique_ids])
    raw_items: list[dict[str, Any]] = []
    for space_id in unique_ids:
        raw = found.get(Space.key(space_id))
        if raw is None:
            run.emit(SpaceOutcome(space_id, "", "failed", error=f"Space {space_id} not found"))
        else:
            raw_items.append(raw)
    futures, _whole = run.handle_page(raw_items)
    _wait_all(futures)
    return run.fatal is None and not run.limit_reached


def _run_scan(run: _Run) -> bool:
    """Scan this machine's segments, one scanner thread each; True when every one was read to its end."""
    plan, total = run.job.plan()
    checkpoint = Checkpoint(
        run.job.checkpoint_path, table_name=current_binding().table_name, total_segments=total, segments=plan
    )
    pending = []
    for seg in plan:
        if checkpoint.is_done(seg):
            run.report.segments_skipped += 1
        else:
            if checkpoint.start_key(seg) is not None:
                run.report.segments_resumed += 1
            pending.append(seg)
    if pending:
        with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="backfill-scan") as scanners:
            _wait_all([scanners.submit(_scan_segment, run, checkpoint, seg, total) for seg in pending])
    if run.fatal is not None:
        return False
    complete = all(checkpoint.is_done(seg) for seg in plan)
    if complete and _recorded_every_legacy_code(run, checkpoint):
        engine.mark_legacy_codes_recorded(by=run.job.source)
        run.report.marked_legacy_codes_recorded = True
    return complete


def _recorded_every_legacy_code(run: _Run, checkpoint: Checkpoint) -> bool:
    """Whether a complete scan claimed every code on a legacy table: all segments, no failure, resumed runs too."""
    return (
        run.record_legacy
        and not run.job.dry_run
        and run.job.segment is None
        and not run.report.failed
        and not checkpoint.had_failures
    )


def _scan_segment(run: _Run, checkpoint: Checkpoint, segment: int, total: int) -> None:
    """One scanner: read pages, hand them to the workers, checkpoint each finished page."""
    pages = _scan_pages(
        segment=segment if total > 1 else None,
        total_segments=total if total > 1 else None,
        start_key=checkpoint.start_key(segment),
        page_size=run.job.page_size,
    )
    try:
        current = next(pages, None)
        while current is not None and not run.stop.is_set():
            raw_items, resume_key = current
            futures, whole = run.handle_page(raw_items)
            # Read the next page while the workers write this one.
            upcoming = next(pages, None) if resume_key is not None and whole and not run.stop.is_set() else None
            _wait_all(futures)
            if run.fatal is not None:
                return
            if whole:
                with run.lock:
                    failures_so_far = bool(run.report.failed)
                checkpoint.advance(segment, resume_key, had_failures=failures_so_far)
            if not whole or run.limit_reached:
                run.stop.set()
                return
            current = upcoming
    except BaseException as exc:  # surfaced by the caller
        run.fail_run(exc)


def _scan_pages(
    *, segment: int | None, total_segments: int | None, start_key: dict[str, Any] | None, page_size: int
) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any] | None]]:
    """Pages of raw space items of one scan segment, with the key to resume after each."""
    connection = table_connection()
    key = start_key
    while True:
        with translate_unreachable():
            page = connection.scan(
                filter_condition=Space.sk == keys.SPACE_METADATA_SK,
                attributes_to_get=list(SCANNED_ATTRIBUTES),
                limit=page_size,
                segment=segment,
                total_segments=total_segments,
                exclusive_start_key=key,
            )
        key = page.get("LastEvaluatedKey")
        yield page.get("Items", []), key
        if key is None:
            return


def _wait_all(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()


# --- the workers ------------------------------------------------------------------------------


class _Run:
    """State shared by the scanner threads and the workers of one backfill."""

    def __init__(
        self,
        job: _Job,
        *,
        record_legacy: bool,
        limiter: RateLimiter | None,
        on_space: Callable[[SpaceOutcome], None] | None,
        workers: ThreadPoolExecutor,
    ) -> None:
        self.job = job
        self.report = BackfillReport(dry_run=job.dry_run)
        self.record_legacy = record_legacy
        self.limiter = limiter
        self.on_space = on_space
        self.workers = workers
        self.allowance = job.limit
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.limit_reached = False

    def emit(self, outcome: SpaceOutcome) -> None:
        """Count one space's outcome and tell ``on_space``, one outcome at a time."""
        with self.lock:
            self.report.count(outcome, keep_change=self.job.collect_changes)
            if self.on_space is not None:
                self.on_space(outcome)

    def take_allowance(self, wanted: int) -> int:
        """How many of ``wanted`` spaces without a code this run may still handle."""
        with self.lock:
            if self.allowance is None:
                return wanted
            granted = min(wanted, self.allowance)
            self.allowance -= granted
            if self.allowance == 0:
                self.limit_reached = True
            return granted

    def fail_run(self, exc: BaseException) -> None:
        with self.lock:
            if self.fatal is None:
                self.fatal = exc
        self.stop.set()

    def handle_page(self, raw_items: list[dict[str, Any]]) -> tuple[list[Future[None]], bool]:
        """Submit a page's work; returns the futures and whether the page was handled whole.

        Model objects are built only for the spaces that need work: on a table
        whose legacy codes are recorded, that is the spaces without a code.
        """
        with self.lock:
            self.report.total_spaces += len(raw_items)
        missing = [Space.from_raw_data(raw) for raw in raw_items if not _has_code(raw)]
        granted = self.take_allowance(len(missing))
        with self.lock:
            self.report.missing += granted
        futures: list[Future[None]] = [
            self.workers.submit(self._guarded, partial(self._assign, chunk))
            for chunk in _chunks(missing[:granted], CHUNK_SIZE)
        ]
        if self.record_legacy and not self.job.dry_run:
            holding = [Space.from_raw_data(raw) for raw in raw_items if _has_code(raw)]
            futures.extend(
                self.workers.submit(self._guarded, partial(self._record, chunk))
                for chunk in _chunks(holding, engine.SPACES_PER_RECORDING)
            )
        return futures, granted == len(missing)

    def _guarded(self, task: Callable[[], None]) -> None:
        if self.stop.is_set() and self.fatal is not None:
            return
        try:
            with limiting_this_thread(self.limiter):
                task()
        except BaseException as exc:  # DynamoDB gone, or a bug: it must stop the run, not vanish in a thread
            self.fail_run(exc)

    def _assign(self, chunk: list[Space]) -> None:
        if self.job.dry_run:
            for space in chunk:
                self.emit(SpaceOutcome(space.id, _name(space), "would_update"))
            return
        names = {space.id: _name(space) for space in chunk}
        # One bad space is reported with its error; its neighbours still get a code.
        engine.invite_code_assign_if_missing(
            spaces=chunk,
            actor_id=self.job.actor_id,
            source=self.job.source,
            on_change=lambda change: self.emit(_outcome_of(change, names.get(change.space_id, ""))),
        )

    def _record(self, chunk: list[Space]) -> None:
        try:
            holders = engine.invite_codes_record_existing(spaces=chunk)
        except DynamoUnavailable:
            raise
        except Exception as exc:  # reported per space, the run goes on
            for space in chunk:
                self.emit(SpaceOutcome(space.id, _name(space), "failed", error=_describe(exc)))
            return
        for space in chunk:
            holder = holders.get(space.id)
            if holder is None:
                with self.lock:
                    self.report.legacy_codes_recorded += 1
            else:
                self.emit(
                    SpaceOutcome(space.id, _name(space), "duplicate_code", new_code=space.invite_code, error=holder)
                )


def _outcome_of(change: engine.CodeChange, name: str) -> SpaceOutcome:
    if change.applied:
        return SpaceOutcome(change.space_id, name, "updated", new_code=change.new_code)
    if change.error:
        return SpaceOutcome(change.space_id, name, "failed", error=change.error)
    return SpaceOutcome(change.space_id, name, "skipped_already_had_code")


def _has_code(raw: dict[str, Any]) -> bool:
    return bool(raw.get("invite_code", {}).get("S"))


def _name(space: Space) -> str:
    return space.name or ""


def _chunks(items: list[Space], size: int) -> Iterator[list[Space]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return str(exc)
    return short_reason(exc)
