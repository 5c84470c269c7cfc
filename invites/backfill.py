"""The backfill: scan the table for spaces without an invite code and give them one.

Shared by ``manage.py backfill_invite_codes`` and the admin; both call
:func:`backfill_missing_codes` and only present its :class:`BackfillReport`.

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
  atomically rewritten with that segment's ``LastEvaluatedKey``.
* Throttling is retried by botocore (the command turns on adaptive retries);
  ``max_writes_per_second`` adds an explicit token bucket on this run's
  item writes only (each action of a transaction counts once).
* On a table whose legacy codes are not yet recorded, codes found on spaces
  are claimed as the scan passes them, and a complete, failure-free,
  untargeted run over every segment sets the table flag.

``changes`` holds
``(space_id, name, new_code)`` with ``new_code`` None in a dry run; pass
``collect_changes=False`` (the command does, with ``on_space``) so a run over
millions of spaces does not keep every change in memory. ``updated`` counts
the spaces that got a code, or in a dry run would get one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.conf import settings

from invites import services as engine
from spaces import keys
from spaces.dynamodb import (
    DynamoUnavailable,
    current_binding,
    get_many,
    on_every_call,
    short_reason,
    table_connection,
    translate_unreachable,
)
from spaces.exceptions import DomainError
from spaces.models import Space

logger = logging.getLogger(__name__)

# One transaction per chunk: three actions a space, DynamoDB takes 100 (engine.SPACES_PER_ASSIGNMENT).
CHUNK_SIZE = engine.SPACES_PER_ASSIGNMENT
# Only what the backfill reads: keys, name (for logs and reports) and the code.
SCANNED_ATTRIBUTES = ("PK", "SK", "id", "name", "invite_code")
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

OutcomeStatus = Literal["updated", "would_update", "skipped_already_had_code", "failed", "duplicate_code"]


class BackfillConfigError(ValueError):
    """The arguments cannot describe a backfill (bad combination, bad checkpoint file)."""


@dataclass(frozen=True)
class SpaceOutcome:
    """What happened to one space; passed to ``on_space`` as it happens."""

    space_id: str
    name: str
    status: OutcomeStatus
    new_code: str | None = None
    # The error for "failed"; for "duplicate_code", the id of the other holder.
    error: str | None = None


@dataclass
class BackfillReport:
    dry_run: bool
    total_spaces: int = 0  # space items seen by this run
    missing: int = 0  # of those, without a code (and handled, when ``limit`` cut the run short)
    updated: int = 0  # got a code (dry run: would get one)
    skipped_already_had_code: int = 0  # got a code from someone else between the scan and the write
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (space_id, name, error)
    changes: list[tuple[str, str, str | None]] = field(default_factory=list)  # (space_id, name, new_code)
    legacy_codes_recorded: int = 0  # existing codes claimed on a legacy table
    duplicate_codes: list[tuple[str, str, str]] = field(default_factory=list)  # (space_id, code, holder_id)
    marked_legacy_codes_recorded: bool = False
    complete: bool = False  # every targeted space was scanned and handled
    seconds: float = 0.0
    segments_resumed: int = 0  # segments that started from a checkpoint
    segments_skipped: int = 0  # segments a checkpoint marked as finished

    @property
    def remaining_estimate(self) -> int | None:
        """0 when complete; unknown (None) when the run stopped early."""
        return 0 if self.complete else None

    @property
    def processed(self) -> int:
        """Spaces without a code that this run handled (the guide's 'Total spaces processed')."""
        return self.updated + self.skipped_already_had_code + len(self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "total_spaces": self.total_spaces,
            "missing": self.missing,
            "updated": self.updated,
            "skipped_already_had_code": self.skipped_already_had_code,
            "failed_count": len(self.failed),
            "legacy_codes_recorded": self.legacy_codes_recorded,
            "marked_legacy_codes_recorded": self.marked_legacy_codes_recorded,
            "complete": self.complete,
            "remaining_estimate": self.remaining_estimate,
            "seconds": round(self.seconds, 3),
            "segments_resumed": self.segments_resumed,
            "segments_skipped": self.segments_skipped,
            "failures": [{"space_id": s, "name": n, "error": e} for s, n, e in self.failed],
            "duplicate_codes": [{"space_id": s, "code": c, "held_by": h} for s, c, h in self.duplicate_codes],
        }


# --- write rate limiting ---------------------------------------------------------------


class RateLimiter:
    """A token bucket shared by threads: ``acquire(n)`` blocks until ``n`` item writes may go.

    A request larger than the bucket (a transaction of 99 actions under a cap
    of 10 a second) is let through once the bucket has paid for it: the
    tokens go negative and later writers wait until they are repaid, so the
    average rate holds whatever the request sizes.
    """

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not per_second > 0 or per_second == float("inf"):
            raise BackfillConfigError("max writes per second must be a positive number")
        self.per_second = per_second
        self.capacity = max(1.0, per_second)  # at most one second of burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, count: int = 1) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= count
            # Tolerate float rounding of elapsed * rate.
            wait = 0.0 if self._tokens >= -1e-9 else -self._tokens / self.per_second
        if wait > 0:
            self._sleep(wait)


_thread_state = threading.local()
_rate_hook_lock = threading.Lock()
_rate_hook_installed = False


def _limit_writes_of_this_thread(model: Any, params: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parameter-build`` hook (it sees the call's parameters): writes from a
    rate-limited worker wait for their tokens.

    Every item a call writes takes one token (each action of a transaction,
    each request of a batch). Only threads that carry a limiter are slowed,
    so the web app's requests in the same process (the admin) are never held
    back by a backfill.
    """
    limiter: RateLimiter | None = getattr(_thread_state, "limiter", None)
    if limiter is not None and model.name in WRITE_OPERATIONS:
        limiter.acquire(_items_written(model.name, params))


def _items_written(operation: str, params: dict[str, Any]) -> int:
    if operation == "TransactWriteItems":
        return len(params.get("TransactItems", ()))
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values())
    return 1


def _install_rate_hook() -> None:
    global _rate_hook_installed
    with _rate_hook_lock:
        if not _rate_hook_installed:
            on_every_call("before-parameter-build.dynamodb", _limit_writes_of_this_thread)
            _rate_hook_installed = True


# --- checkpoint ---------------------------------------------------------------------------


class Checkpoint:
    """Per-segment scan positions in a JSON file, rewritten atomically after each page."""

    VERSION = 1

    def __init__(self, path: str | None, *, table_name: str, total_segments: int, segments: list[int]) -> None:
        self.path = Path(path) if path else None
        self.table_name = table_name
        self.total_segments = total_segments
        self._lock = threading.Lock()
        self.state: dict[str, dict[str, Any]] = {str(s): {"last_evaluated_key": None, "done": False} for s in segments}
        self.had_failures = False
        if self.path is not None and self.path.exists():
            self._load(segments)

    def _load(self, segments: list[int]) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise BackfillConfigError(f"checkpoint file {self.path} cannot be read: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != self.VERSION:
            raise BackfillConfigError(f"checkpoint file {self.path} is not a backfill checkpoint")
        if data.get("table") != self.table_name or data.get("total_segments") != self.total_segments:
            raise BackfillConfigError(
                f"checkpoint file {self.path} was written for table {data.get('table')!r} with "
                f"{data.get('total_segments')} segments; this run uses {self.table_name!r} with "
                f"{self.total_segments}"
            )
        saved = data.get("segments", {})
        if sorted(saved) != sorted(str(s) for s in segments):
            raise BackfillConfigError(f"checkpoint file {self.path} covers other segments ({sorted(saved)})")
        self.state = saved
        self.had_failures = bool(data.get("had_failures"))

    def start_key(self, segment: int) -> dict[str, Any] | None:
        return self.state[str(segment)]["last_evaluated_key"]

    def is_done(self, segment: int) -> bool:
        return bool(self.state[str(segment)]["done"])

    def advance(self, segment: int, last_evaluated_key: dict[str, Any] | None, *, had_failures: bool) -> None:
        with self._lock:
            self.state[str(segment)] = {
                "last_evaluated_key": last_evaluated_key,
                "done": last_evaluated_key is None,
            }
            self.had_failures = self.had_failures or had_failures
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        payload = json.dumps(
            {
                "version": self.VERSION,
                "table": self.table_name,
                "total_segments": self.total_segments,
                "had_failures": self.had_failures,
                "segments": self.state,
            }
        )
        # Write a temporary file beside the target and rename it over: a kill
        # at any moment leaves either the old or the new checkpoint, never half.
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, temp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, self.path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


# --- the run ---------------------------------------------------------------------------------


def _has_code(raw: dict[str, Any]) -> bool:
    return bool(raw.get("invite_code", {}).get("S"))


def _name(space: Space) -> str:
    return space.name or ""


def _chunks(items: list[Space], size: int) -> Iterator[list[Space]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Run:
    """State shared by the scanner threads and the workers of one backfill."""

    def __init__(
        self,
        *,
        dry_run: bool,
        limit: int | None,
        record_legacy: bool,
        limiter: RateLimiter | None,
        on_space: Callable[[SpaceOutcome], None] | None,
        collect_changes: bool,
        actor_id: str | None,
        source: str,
        workers: ThreadPoolExecutor,
    ) -> None:
        self.report = BackfillReport(dry_run=dry_run)
        self.dry_run = dry_run
        self.allowance = limit
        self.record_legacy = record_legacy
        self.limiter = limiter
        self.on_space = on_space
        self.collect_changes = collect_changes
        self.actor_id = actor_id
        self.source = source
        self.workers = workers
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.limit_reached = False

    # -- accounting (always under the lock) --

    def _emit(self, outcome: SpaceOutcome) -> None:
        report = self.report
        with self.lock:
            if outcome.status in ("updated", "would_update"):
                report.updated += 1
                if self.collect_changes:
                    report.changes.append((outcome.space_id, outcome.name, outcome.new_code))
            elif outcome.status == "skipped_already_had_code":
                report.skipped_already_had_code += 1
            elif outcome.status == "failed":
                report.failed.append((outcome.space_id, outcome.name, outcome.error or "unknown error"))
            elif outcome.status == "duplicate_code":
                report.duplicate_codes.append((outcome.space_id, outcome.new_code or "", outcome.error or ""))
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

    # -- work on one page --

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
            self.workers.submit(self._assign_chunk, chunk) for chunk in _chunks(missing[:granted], CHUNK_SIZE)
        ]
        if self.record_legacy and not self.dry_run:
            holding = [Space.from_raw_data(raw) for raw in raw_items if _has_code(raw)]
            futures.extend(
                self.workers.submit(self._record_chunk, chunk)
                for chunk in _chunks(holding, engine.SPACES_PER_RECORDING)
            )
        return futures, granted == len(missing)

    def _guarded(self, task: Callable[[], None]) -> None:
        if self.stop.is_set() and self.fatal is not None:
            return
        _thread_state.limiter = self.limiter
        try:
            task()
        except DynamoUnavailable as exc:
            self.fail_run(exc)
        except BaseException as exc:  # a bug must stop the run, not vanish in a thread
            self.fail_run(exc)
        finally:
            _thread_state.limiter = None

    def _assign_chunk(self, chunk: list[Space]) -> None:
        self._guarded(lambda: self._assign(chunk))

    def _record_chunk(self, chunk: list[Space]) -> None:
        self._guarded(lambda: self._record(chunk))

    def _assign(self, chunk: list[Space]) -> None:
        if self.dry_run:
            for space in chunk:
                self._emit(SpaceOutcome(space.id, _name(space), "would_update"))
            return
        names = {space.id: _name(space) for space in chunk}
        # One bad space is reported with its error; its neighbours still get a code.
        engine.invite_code_assign_if_missing(
            spaces=chunk,
            actor_id=self.actor_id,
            source=self.source,
            on_change=lambda change: self._emit_change(names.get(change.space_id, ""), change),
        )

    def _emit_change(self, name: str, change: engine.CodeChange) -> None:
        if change.applied:
            self._emit(SpaceOutcome(change.space_id, name, "updated", new_code=change.new_code))
        elif change.error:
            self._emit(SpaceOutcome(change.space_id, name, "failed", error=change.error))
        else:
            self._emit(SpaceOutcome(change.space_id, name, "skipped_already_had_code"))

    def _record(self, chunk: list[Space]) -> None:
        try:
            holders = engine.invite_codes_record_existing(spaces=chunk)
        except DynamoUnavailable:
            raise
        except Exception as exc:  # reported per space, the run goes on
            for space in chunk:
                self._emit(SpaceOutcome(space.id, _name(space), "failed", error=_describe(exc)))
            return
        for space in chunk:
            holder = holders.get(space.id)
            if holder is None:
                with self.lock:
                    self.report.legacy_codes_recorded += 1
            else:
                self._emit(
                    SpaceOutcome(space.id, _name(space), "duplicate_code", new_code=space.invite_code, error=holder)
                )


class JsonReportWriter:
    """``--report FILE.json``: changes are streamed into the file as they happen.

    The file is one JSON object, ``{"changes": [...], "summary": {...}}``;
    changes are written while the run goes, so memory stays flat however many
    spaces are fixed. Call :meth:`add` from ``on_space`` and :meth:`close` at the end.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write('{"changes": [')
        self._first = True
        self._lock = threading.Lock()

    def add(self, outcome: SpaceOutcome) -> None:
        if outcome.status not in ("updated", "would_update"):
            return
        entry = json.dumps({"space_id": outcome.space_id, "name": outcome.name, "new_code": outcome.new_code})
        with self._lock:
            self._handle.write(("\n" if self._first else ",\n") + entry)
            self._first = False

    def close(self, report: BackfillReport | None, *, error: str | None = None) -> None:
        summary = report.as_dict() if report is not None else {"error": error}
        with self._lock:
            self._handle.write('\n], "summary": ' + json.dumps(summary, indent=2) + "}\n")
            self._handle.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return str(exc)
    return short_reason(exc)


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


def _scan_segment(run: _Run, checkpoint: Checkpoint, segment: int, total: int, page_size: int) -> None:
    """One scanner: read pages, hand them to the workers, checkpoint each finished page."""
    scan_segment = segment if total > 1 else None
    scan_total = total if total > 1 else None
    pages = _scan_pages(
        segment=scan_segment, total_segments=scan_total, start_key=checkpoint.start_key(segment), page_size=page_size
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


def _validate(
    *,
    limit: int | None,
    segments: int,
    workers: int,
    segment: int | None,
    total_segments: int | None,
    space_ids: list[str] | None,
    dry_run: bool,
    checkpoint_path: str | None,
) -> None:
    from spaces.ids import is_valid_space_id

    if limit is not None and limit < 1:
        raise BackfillConfigError("limit must be at least 1")
    if segments < 1 or workers < 1:
        raise BackfillConfigError("segments and workers must be at least 1")
    if (segment is None) != (total_segments is None):
        raise BackfillConfigError("segment and total segments go together")
    if total_segments is not None and segment is not None and not 0 <= segment < total_segments:
        raise BackfillConfigError(f"segment must be between 0 and {(total_segments or 1) - 1}")
    if space_ids is not None:
        bad = [space_id for space_id in space_ids if not is_valid_space_id(space_id)]
        if bad:
            raise BackfillConfigError(f"not a space id: {bad[0]!r}")
        if checkpoint_path or segment is not None:
            raise BackfillConfigError("space ids cannot be combined with a checkpoint or a segment")
    if dry_run and checkpoint_path:
        raise BackfillConfigError("a dry run does not write a checkpoint; drop the checkpoint file")


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
    over several machines. Raises :class:`BackfillConfigError` for unusable
    arguments and :class:`DynamoUnavailable` when DynamoDB cannot be reached.
    """
    segments = segments or settings.BACKFILL_SEGMENTS
    workers = workers or settings.BACKFILL_WORKERS
    page_size = page_size or settings.BACKFILL_PAGE_SIZE
    _validate(
        limit=limit,
        segments=segments,
        workers=workers,
        segment=segment,
        total_segments=total_segments,
        space_ids=space_ids,
        dry_run=dry_run,
        checkpoint_path=checkpoint_path,
    )
    started = time.monotonic()
    limiter = RateLimiter(max_writes_per_second) if max_writes_per_second else None
    if limiter is not None:
        _install_rate_hook()
    record_legacy = not engine.legacy_codes_recorded()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill-worker") as pool:
        run = _Run(
            dry_run=dry_run,
            limit=limit,
            record_legacy=record_legacy,
            limiter=limiter,
            on_space=on_space,
            collect_changes=collect_changes,
            actor_id=actor_id,
            source=source,
            workers=pool,
        )
        if space_ids is not None:
            _run_targeted(run, space_ids)
            complete = run.fatal is None and not run.limit_reached
        else:
            if segment is not None and total_segments is not None:
                plan, total = [segment], total_segments
            else:
                plan, total = list(range(segments)), segments
            checkpoint = Checkpoint(
                checkpoint_path, table_name=current_binding().table_name, total_segments=total, segments=plan
            )
            complete = _run_scan(run, checkpoint, plan, total, page_size)
            if (
                complete
                and record_legacy
                and not dry_run
                and segment is None
                and not run.report.failed
                and not checkpoint.had_failures
            ):
                engine.mark_legacy_codes_recorded(by=source)
                run.report.marked_legacy_codes_recorded = True
    if run.fatal is not None:
        raise run.fatal
    run.report.complete = complete
    run.report.seconds = time.monotonic() - started
    return run.report


def _run_scan(run: _Run, checkpoint: Checkpoint, plan: list[int], total: int, page_size: int) -> bool:
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
            _wait_all([scanners.submit(_scan_segment, run, checkpoint, seg, total, page_size) for seg in pending])
    if run.fatal is not None:
        return False
    return all(checkpoint.is_done(seg) for seg in plan)


def _run_targeted(run: _Run, space_ids: list[str]) -> None:
    unique_ids = list(dict.fromkeys(space_ids))
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in unique_ids])
    raw_items: list[dict[str, Any]] = []
    for space_id in unique_ids:
        raw = found.get(Space.key(space_id))
        if raw is None:
            run._emit(SpaceOutcome(space_id, "", "failed", error=f"Space {space_id} not found"))
        else:
            raw_items.append(raw)
    futures, _whole = run.handle_page(raw_items)
    _wait_all(futures)
