"""The work on each page: which spaces need it, the worker pool's tasks, and the tally of what happened.

Shared by the scanner threads and the workers of one backfill (one process).
Every write goes through the engine:

* backfill: ``invite_code_assign_if_missing``, one transaction per chunk of 33
  spaces, and on a legacy table ``invite_codes_record_existing`` for the codes
  spaces already hold;
* ``--replace-legacy-codes``: ``invite_code_regenerate`` per space, whose
  transaction switches the space only from the code the scan read, so a space
  whose code changed since the scan is never touched (it is reported as
  skipped).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from invites import codes
from invites import services as engine
from invites.backfill.job import MODE_BACKFILL, Job
from invites.backfill.rate_limit import RateLimiter, limiting_this_thread
from invites.backfill.report import BackfillReport, PageRead, PageTally, SpaceOutcome
from spaces.dynamodb import DynamoUnavailable, short_reason
from spaces.exceptions import DomainError
from spaces.models import Space

# One transaction per chunk: three actions a space, DynamoDB takes 100 (engine.SPACES_PER_ASSIGNMENT).
CHUNK_SIZE = engine.SPACES_PER_ASSIGNMENT
# A regeneration is one transaction per space; small chunks spread them over the workers.
REPLACE_CHUNK_SIZE = 5


class Pipeline:
    """State shared by the scanner threads and the workers of one backfill."""

    def __init__(
        self,
        job: Job,
        *,
        record_legacy: bool,
        limiter: RateLimiter | None,
        on_space: Callable[[SpaceOutcome], None] | None,
        on_page: Callable[[PageRead], None] | None,
        workers: ThreadPoolExecutor,
    ) -> None:
        self.job = job
        self.report = BackfillReport(dry_run=job.dry_run, mode=job.mode, run_name=job.run_name)
        self.record_legacy = record_legacy and job.mode == MODE_BACKFILL
        self.limiter = limiter
        self.on_space = on_space
        self.on_page = on_page
        self.workers = workers
        self.allowance = job.limit
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.fatal: BaseException | None = None
        self.limit_reached = False

    def emit(self, outcome: SpaceOutcome, tally: PageTally) -> None:
        """Count one space's outcome and tell ``on_space``, one outcome at a time."""
        with self.lock:
            self.report.count(outcome, keep_change=self.job.collect_changes)
            tally.count(outcome)
            if self.on_space is not None:
                self.on_space(outcome)

    def heard_page(self, page: PageRead) -> None:
        if self.on_page is not None:
            with self.lock:
                self.on_page(page)

    def take_allowance(self, wanted: int) -> int:
        """How many of ``wanted`` spaces this run may still handle."""
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

    def handle_page(self, raw_items: list[dict[str, Any]], tally: PageTally) -> tuple[list[Future[None]], bool]:
        """Submit a page's work; returns the futures and whether the page was handled whole.

        Model objects are built only for the spaces that need work: on a table
        whose legacy codes are recorded, that is the spaces without a code.
        """
        tally.scanned = len(raw_items)
        wanted = [Space.from_raw_data(raw) for raw in raw_items if self._wants(raw)]
        granted = self.take_allowance(len(wanted))
        tally.missing = granted
        with self.lock:
            self.report.total_spaces += len(raw_items)
            self.report.missing += granted
        if self.job.mode == MODE_BACKFILL:
            task, size = self._assign, CHUNK_SIZE
        else:
            task, size = self._replace, REPLACE_CHUNK_SIZE
        futures = [
            self.workers.submit(self._guarded, partial(task, chunk, tally)) for chunk in _chunks(wanted[:granted], size)
        ]
        if self.record_legacy and not self.job.dry_run:
            holding = [Space.from_raw_data(raw) for raw in raw_items if _code_of(raw)]
            futures.extend(
                self.workers.submit(self._guarded, partial(self._record, chunk, tally))
                for chunk in _chunks(holding, engine.SPACES_PER_RECORDING)
            )
        return futures, granted == len(wanted)

    def _wants(self, raw: dict[str, Any]) -> bool:
        code = _code_of(raw)
        if self.job.mode == MODE_BACKFILL:
            return not code
        return bool(code) and not codes.is_new_format(code)

    def _guarded(self, task: Callable[[], None]) -> None:
        if self.stop.is_set() and self.fatal is not None:
            return
        try:
            with limiting_this_thread(self.limiter):
                task()
        except BaseException as exc:  # DynamoDB gone, or a bug: it must stop the run, not vanish in a thread
            self.fail_run(exc)

    def _assign(self, chunk: list[Space], tally: PageTally) -> None:
        if self.job.dry_run:
            for space in chunk:
                self.emit(SpaceOutcome(space.id, _name(space), "would_update"), tally)
            return
        names = {space.id: _name(space) for space in chunk}
        # One bad space is reported with its error; its neighbours still get a code.
        engine.invite_code_assign_if_missing(
            spaces=chunk,
            actor_id=self.job.actor_id,
            source=self.job.source,
            on_change=lambda change: self.emit(_outcome_of(change, names.get(change.space_id, "")), tally),
        )

    def _replace(self, chunk: list[Space], tally: PageTally) -> None:
        for space in chunk:
            old = space.invite_code
            if self.job.dry_run:
                self.emit(SpaceOutcome(space.id, _name(space), "would_update", old_code=old), tally)
                continue
            try:
                # Switches the space only from ``old``, the code the scan read.
                change = engine.invite_code_regenerate(
                    space_id=space.id, space=space, actor_id=self.job.actor_id, source="backfill"
                )
            except DynamoUnavailable:
                raise
            except Exception as exc:  # reported per space, the run goes on
                self.emit(SpaceOutcome(space.id, _name(space), "failed", error=_describe(exc), old_code=old), tally)
                continue
            outcome = _outcome_of(change, _name(space))
            self.emit(dataclasses.replace(outcome, old_code=old), tally)

    def _record(self, chunk: list[Space], tally: PageTally) -> None:
        try:
            holders = engine.invite_codes_record_existing(spaces=chunk)
        except DynamoUnavailable:
            raise
        except Exception as exc:  # reported per space, the run goes on
            for space in chunk:
                self.emit(SpaceOutcome(space.id, _name(space), "failed", error=_describe(exc)), tally)
            return
        for space in chunk:
            holder = holders.get(space.id)
            if holder is None:
                with self.lock:
                    self.report.legacy_codes_recorded += 1
                    tally.recorded += 1
            else:
                self.emit(
                    SpaceOutcome(space.id, _name(space), "duplicate_code", new_code=space.invite_code, error=holder),
                    tally,
                )


def _outcome_of(change: engine.CodeChange, name: str) -> SpaceOutcome:
    if change.applied:
        return SpaceOutcome(change.space_id, name, "updated", new_code=change.new_code)
    if change.error:
        return SpaceOutcome(change.space_id, name, "failed", error=change.error)
    return SpaceOutcome(change.space_id, name, "skipped_already_had_code")


def _code_of(raw: dict[str, Any]) -> str:
    return raw.get("invite_code", {}).get("S") or ""


def _name(space: Space) -> str:
    return space.name or ""


def _chunks(items: list[Space], size: int) -> Iterator[list[Space]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DomainError):
        return str(exc)
    return short_reason(exc)
