"""A backfill run's progress kept in the table itself (``--run NAME``), shared by workers on any machine.

Items (keys in :mod:`spaces.keys`, model :class:`spaces.models.BackfillRunItem`):

* ``BACKFILLRUN#<name> / RUN``: the run's kind and shape (machines x
  processes = ``total_segments``), put by the first worker with
  ``attribute_not_exists``; a worker started with another shape is refused.
  ``segments_done`` and ``segments_failed`` count the finished segments (and
  those that finished with failed spaces).
* ``BACKFILLRUN#<name> / SEGMENT#<i>``: ``pages`` handled, the scan's
  ``last_evaluated_key`` after the last of them (JSON), ``done``, the counts of
  those pages, and the worker that wrote it last.

Why it holds with duplicate, stale and killed workers:

* Each finished page is one UpdateItem conditional on ``pages`` still being
  the number this worker read (a parallel scan's keys are not ordered, so the
  counter is what orders the writes). A second worker on the same segment
  loses that condition at its first page and leaves the segment to the
  winner: no segment ever moves backwards, and each page is counted once.
* A segment's last page is one transaction: the segment's done mark, and the
  run's counter moved from the value read to one more (conditional on it). The
  worker whose transaction moves it to ``total_segments`` finished the run:
  exactly one worker, decided by DynamoDB.
* That worker then sets the legacy-codes flag (:func:`run_finish`): one
  transaction that puts the flag with ``attribute_not_exists``, conditional on
  the run being complete with no failed segment. A crash between the two is
  finished by ``--status`` or by any rerun of a worker of the run.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from invites import services as engine
from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.job import MODE_BACKFILL
from invites.backfill.report import PageTally
from spaces import keys
from spaces.dynamodb import DynamoBusy, is_condition_failure, translate_unreachable
from spaces.models import BackfillRunItem, TableFlag, utc_now_iso
from spaces.transactions import Transaction, TransactionCancelled

# Workers finishing segments at the same moment race for the run's counter; each retry re-reads it.
FINISH_ATTEMPTS = 50
COUNTS = ("scanned", "missing", "updated", "skipped", "failed", "recorded", "duplicates")


def this_worker() -> str:
    """Who writes a segment: the host (a Kubernetes pod's name) and the process."""
    return f"{socket.gethostname()}/{os.getpid()}"


@dataclass(frozen=True)
class RunShape:
    kind: str
    machines: int
    processes: int
    total_segments: int

    def describe(self) -> str:
        return (
            f"{self.machines} machine(s) x {self.processes} process(es) = {self.total_segments} scan segment(s), "
            f"{self.kind}"
        )


def run_register(*, name: str, shape: RunShape) -> None:
    """Start run ``name`` with ``shape``, or check that the run already started has it.

    Raises :class:`BackfillConfigError` when the run exists with another shape or kind.
    """
    with translate_unreachable():
        item = _get(BackfillRunItem.run_key(name))
        if item is None:
            now = utc_now_iso()
            new = BackfillRunItem(
                *BackfillRunItem.run_key(name),
                kind=shape.kind,
                machines=shape.machines,
                processes=shape.processes,
                total_segments=shape.total_segments,
                segments_done=0,
                segments_failed=0,
                created_at=now,
                updated_at=now,
            )
            try:
                new.save(condition=BackfillRunItem.pk.does_not_exist())
                return
            except PutError as exc:
                if not is_condition_failure(exc):
                    raise
            item = _get(BackfillRunItem.run_key(name))  # another worker started it a moment ago
    recorded = _shape_of(item)
    if recorded != shape:
        raise BackfillConfigError(
            f"run {name!r} was started as {recorded.describe()}; this worker was started as {shape.describe()}: "
            "start every worker of a run with the same --total-segments, --processes and mode, "
            "or choose another --run name"
        )


def _shape_of(item: BackfillRunItem | None) -> RunShape:
    if item is None or item.total_segments is None:
        raise BackfillConfigError("the run's state in DynamoDB is missing its shape; choose another --run name")
    return RunShape(
        kind=item.kind or MODE_BACKFILL,
        machines=int(item.machines or 1),
        processes=int(item.processes or 1),
        total_segments=int(item.total_segments),
    )


def _get(key: tuple[str, str]) -> BackfillRunItem | None:
    try:
        return BackfillRunItem.get(*key, consistent_read=True)
    except DoesNotExist:
        return None


# --- one process's segments --------------------------------------------------------------------


@dataclass
class _Segment:
    pages: int
    start_key: dict[str, Any] | None
    done: bool
    failed: int


class RunProgress:
    """The segments one process scans, as run ``name`` in DynamoDB has them; the run's counterpart of a checkpoint.

    Each segment is advanced by its own scanner thread only.
    """

    def __init__(self, name: str, *, kind: str, total_segments: int, segments: list[int]) -> None:
        self.name = name
        self.total_segments = total_segments
        self.worker = this_worker()
        with translate_unreachable():
            run = _get(BackfillRunItem.run_key(name))
        if run is None:  # the service called directly, not through the command: one process
            run_register(name=name, shape=RunShape(kind, total_segments, 1, total_segments))
        else:
            shape = _shape_of(run)
            if (shape.kind, shape.total_segments) != (kind, total_segments):
                raise BackfillConfigError(
                    f"run {name!r} was started as {shape.describe()}; this worker scans {total_segments} "
                    f"segment(s), {kind}: choose another --run name"
                )
        with translate_unreachable():
            self._segments = {segment: self._open(segment) for segment in segments}
        # True in the one worker whose done mark made the run's counter reach total_segments.
        self.completed_run = False

    def _open(self, segment: int) -> _Segment:
        key = BackfillRunItem.segment_key(self.name, segment)
        item = _get(key)
        if item is None:
            now = utc_now_iso()
            fresh = BackfillRunItem(
                *key, segment=segment, pages=0, done=False, worker=self.worker, **dict.fromkeys(COUNTS, 0)
            )
            fresh.created_at = fresh.updated_at = now
            try:
                fresh.save(condition=BackfillRunItem.pk.does_not_exist())
                return _Segment(pages=0, start_key=None, done=False, failed=0)
            except PutError as exc:
                if not is_condition_failure(exc):
                    raise
            item = _get(key)
        assert item is not None
        start = json.loads(item.last_evaluated_key) if item.last_evaluated_key else None
        return _Segment(pages=int(item.pages or 0), start_key=start, done=bool(item.done), failed=int(item.failed or 0))

    def start_key(self, segment: int) -> dict[str, Any] | None:
        return self._segments[segment].start_key

    def is_done(self, segment: int) -> bool:
        return self._segments[segment].done

    def is_resumed(self, segment: int) -> bool:
        return self._segments[segment].pages > 0

    def advance(self, segment: int, last_evaluated_key: dict[str, Any] | None, tally: PageTally) -> bool:
        """Record one finished page; False when another worker advanced the segment first (leave it to that one)."""
        state = self._segments[segment]
        with translate_unreachable():
            if last_evaluated_key is None:
                ours = self._finish(segment, state, tally)
            else:
                ours = self._advance_page(segment, state, last_evaluated_key, tally)
        if ours:
            state.pages += 1
            state.failed += tally.failed
            state.start_key = last_evaluated_key
            state.done = last_evaluated_key is None
        return ours

    def holder(self, segment: int) -> str:
        """Who wrote the segment last (after :meth:`advance` answered False)."""
        with translate_unreachable():
            item = _get(BackfillRunItem.segment_key(self.name, segment))
        return (item.worker or "another worker") if item is not None else "another worker"

    def _advance_page(self, segment: int, state: _Segment, key: dict[str, Any], tally: PageTally) -> bool:
        item = BackfillRunItem(*BackfillRunItem.segment_key(self.name, segment))
        actions = [*self._page_actions(state, tally), BackfillRunItem.last_evaluated_key.set(json.dumps(key))]
        try:
            item.update(actions=actions, condition=_still_at(state))
        except UpdateError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _finish(self, segment: int, state: _Segment, tally: PageTally) -> bool:
        """The segment's last page: its done mark and the run's counter, in one transaction."""
        failed_here = 1 if state.failed + tally.failed else 0
        for _attempt in range(FINISH_ATTEMPTS):
            run = _get(BackfillRunItem.run_key(self.name))
            assert run is not None
            done_before = int(run.segments_done or 0)
            tx = Transaction()
            segment_actions = [
                *self._page_actions(state, tally),
                BackfillRunItem.done.set(True),
                BackfillRunItem.last_evaluated_key.remove(),
            ]
            tx.update(
                "segment",
                BackfillRunItem(*BackfillRunItem.segment_key(self.name, segment)),
                segment_actions,
                condition=_still_at(state),
            )
            run_actions = [
                BackfillRunItem.segments_done.set(done_before + 1),
                BackfillRunItem.segments_failed.set(int(run.segments_failed or 0) + failed_here),
                BackfillRunItem.updated_at.set(utc_now_iso()),
            ]
            tx.update(
                "run",
                BackfillRunItem(*BackfillRunItem.run_key(self.name)),
                run_actions,
                condition=BackfillRunItem.segments_done == done_before,
            )
            try:
                tx.commit()
            except TransactionCancelled as cancelled:
                if cancelled.failed("segment"):
                    return False
                if cancelled.failed("run"):  # another segment finished meanwhile: read the counter again
                    time.sleep(random.uniform(0, 0.05))
                    continue
                raise
            self.completed_run = done_before + 1 == self.total_segments
            return True
        raise DynamoBusy(f"run {self.name!r}: the run's counter kept changing; try again")

    def _page_actions(self, state: _Segment, tally: PageTally) -> list[Action]:
        counts = tally.as_dict()
        return [
            BackfillRunItem.pages.set(state.pages + 1),
            BackfillRunItem.worker.set(self.worker),
            BackfillRunItem.updated_at.set(utc_now_iso()),
            *(getattr(BackfillRunItem, name).add(counts[name]) for name in COUNTS),
        ]


def _still_at(state: _Segment) -> Condition:
    """The segment is where this worker left it: nobody advanced it since."""
    return (BackfillRunItem.pages == state.pages) & (BackfillRunItem.done == False)  # noqa: E712 (an expression)


# --- the whole run: status and completion -------------------------------------------------------


@dataclass(frozen=True)
class SegmentStatus:
    segment: int
    pages: int
    done: bool
    counts: dict[str, int]
    worker: str | None
    updated_at: str | None


@dataclass(frozen=True)
class RunStatus:
    name: str
    shape: RunShape
    segments_done: int
    segments_failed: int
    created_at: str | None
    completed_at: str | None
    segments: list[SegmentStatus] = field(default_factory=list)  # the segments a worker has started, in order
    legacy_codes_recorded: bool = False

    @property
    def complete(self) -> bool:
        return self.segments_done == self.shape.total_segments

    def totals(self) -> dict[str, int]:
        return {name: sum(segment.counts[name] for segment in self.segments) for name in COUNTS}


def run_status(*, name: str) -> RunStatus | None:
    """Where run ``name`` stands (strongly consistent), or None when no worker has started it."""
    with translate_unreachable():
        items = list(BackfillRunItem.query(keys.backfill_run_pk(name), consistent_read=True))
        recorded = engine.legacy_codes_recorded()
    run = next((item for item in items if item.sk == keys.BACKFILL_RUN_SK), None)
    if run is None:
        return None
    segments = sorted(
        (
            SegmentStatus(
                segment=int(item.segment or 0),
                pages=int(item.pages or 0),
                done=bool(item.done),
                counts={name: int(getattr(item, name) or 0) for name in COUNTS},
                worker=item.worker,
                updated_at=item.updated_at,
            )
            for item in items
            if item.sk.startswith(keys.BACKFILL_SEGMENT_PREFIX)
        ),
        key=lambda segment: segment.segment,
    )
    return RunStatus(
        name=name,
        shape=_shape_of(run),
        segments_done=int(run.segments_done or 0),
        segments_failed=int(run.segments_failed or 0),
        created_at=run.created_at,
        completed_at=run.completed_at,
        segments=segments,
        legacy_codes_recorded=recorded,
    )


def run_finish(*, name: str, by: str) -> bool:
    """Set the legacy-codes flag when run ``name`` is a complete backfill without failed segments; True if set now.

    One transaction: the flag is put only if it does not exist, and only while
    the run's item says every segment is done and none failed. Called by the
    worker that finished the run's last segment, by ``--status`` and by a
    rerun, so a crash between the last done mark and the flag is finished later.
    """
    with translate_unreachable():
        run = _get(BackfillRunItem.run_key(name))
        if run is None or (run.kind or MODE_BACKFILL) != MODE_BACKFILL or run.total_segments is None:
            return False
        total = int(run.total_segments)
        if int(run.segments_done or 0) != total or int(run.segments_failed or 0) != 0:
            return False
        if engine.legacy_codes_recorded():
            return False
        now = utc_now_iso()
        tx = Transaction()
        complete = (BackfillRunItem.segments_done == total) & (BackfillRunItem.segments_failed == 0)
        tx.update(
            "run",
            BackfillRunItem(*BackfillRunItem.run_key(name)),
            [BackfillRunItem.completed_at.set(now)],
            condition=complete,
        )
        flag = TableFlag(*TableFlag.key(keys.LEGACY_CODES_RECORDED_FLAG), set_at=now, set_by=by)
        tx.put("flag", flag, condition=TableFlag.pk.does_not_exist())
        try:
            tx.commit()
        except TransactionCancelled as cancelled:
            if cancelled.failed("flag") or cancelled.failed("run"):
                return False  # set meanwhile by someone else, or the run is not what it was
            raise
    return True
