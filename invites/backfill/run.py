"""The scan -> assign pipeline: :func:`backfill_missing_codes`.

How it works (docs/backfill.md has the operator's view):

* Streaming: each scan segment is read page by page (``Limit`` items per
  page, projected to the few attributes needed); a page's spaces that need
  work are handed to a pool of workers (:mod:`invites.backfill.pipeline`)
  while the next page is being read. At most two pages per segment are in memory.
* Every write goes through the engine: one transaction per chunk of 33
  spaces (claim, mapping and a switch conditional on the space still having
  no code, for each), no per-space read. A space that got a code after the
  scan keeps it (``skipped_already_had_code``); a space DynamoDB refuses
  fails alone. A kill at any moment leaves each chunk applied whole or not at all.
* Resumable: after a page is fully handled, its segment's position is
  recorded: in the checkpoint file (:mod:`invites.backfill.checkpoint`), or
  with ``run_name`` in DynamoDB, where workers on other machines see it
  (:mod:`invites.backfill.run_state`).
* Throttling is retried by botocore (the command turns on adaptive retries);
  ``max_writes_per_second`` adds an explicit token bucket on this run's
  item writes only (:mod:`invites.backfill.rate_limit`).
* On a table whose legacy codes are not yet recorded, codes found on spaces
  are claimed as the scan passes them, and a complete, failure-free,
  untargeted run over every segment sets the table flag.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from invites import services as engine
from invites.backfill.checkpoint import Checkpoint
from invites.backfill.job import MODE_BACKFILL, Job
from invites.backfill.pipeline import Pipeline
from invites.backfill.rate_limit import write_limiter
from invites.backfill.report import BackfillReport, PageRead, PageTally, SpaceOutcome
from invites.backfill.run_state import RunProgress, run_finish
from spaces import keys
from spaces.dynamodb import current_binding, get_many, table_connection, translate_unreachable
from spaces.models import Space

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
    run_name: str | None = None,
    on_space: Callable[[SpaceOutcome], None] | None = None,
    on_page: Callable[[PageRead], None] | None = None,
    actor_id: str | None = None,
    source: str = "backfill",
    collect_changes: bool = True,
    page_size: int | None = None,
    mode: str = MODE_BACKFILL,
) -> BackfillReport:
    """Give every space without an invite code one; never touch a space that has one.

    ``limit`` stops after that many spaces without a code were handled;
    ``space_ids`` targets those spaces only (no scan); ``segment`` and
    ``total_segments`` restrict the scan to one slice of a backfill split
    over several machines; ``run_name`` keeps the progress in DynamoDB, shared
    by every worker of that run. ``on_space`` hears each :class:`SpaceOutcome`
    as it happens, ``on_page`` each page read; ``collect_changes=False``
    keeps ``report.changes`` empty, so a run over millions of spaces does not
    keep every change in memory. ``mode="replace-legacy-codes"`` regenerates
    the spaces whose code is not in the current format instead. Raises
    :class:`BackfillConfigError` for unusable arguments and
    :class:`DynamoUnavailable` when DynamoDB cannot be reached.
    """
    # Longer than 50 lines only by its keyword-only signature and docstring: they are the
    # service's documented interface (the admin and the command call it); the body is short.
    job = Job(
        dry_run=dry_run,
        limit=limit,
        space_ids=space_ids,
        segments=_or_setting(segments, settings.BACKFILL_SEGMENTS),
        workers=_or_setting(workers, settings.BACKFILL_WORKERS),
        segment=segment,
        total_segments=total_segments,
        checkpoint_path=checkpoint_path,
        run_name=run_name,
        page_size=_or_setting(page_size, settings.BACKFILL_PAGE_SIZE),
        collect_changes=collect_changes,
        actor_id=actor_id,
        source=source,
        mode=mode,
    )
    job.validate()
    started = time.monotonic()
    limiter = write_limiter(max_writes_per_second)
    record_legacy = not engine.legacy_codes_recorded()
    with ThreadPoolExecutor(max_workers=job.workers, thread_name_prefix="backfill-worker") as pool:
        pipeline = Pipeline(
            job, record_legacy=record_legacy, limiter=limiter, on_space=on_space, on_page=on_page, workers=pool
        )
        complete = _run_targeted(pipeline) if job.space_ids is not None else _run_scan(pipeline)
    if pipeline.fatal is not None:
        raise pipeline.fatal
    pipeline.report.complete = complete
    pipeline.report.seconds = time.monotonic() - started
    return pipeline.report


def _or_setting(value: int | None, default: int) -> int:
    return default if value is None else value


# --- the two ways through the table ------------------------------------------------------------


def _run_targeted(pipeline: Pipeline) -> bool:
    """Handle the named spaces (one BatchGetItem, no scan); True unless ``limit`` cut the run short."""
    unique_ids = list(dict.fromkeys(pipeline.job.space_ids or ()))
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in unique_ids])
    tally = PageTally()
    raw_items: list[dict[str, Any]] = []
    for space_id in unique_ids:
        raw = found.get(Space.key(space_id))
        if raw is None:
            pipeline.emit(SpaceOutcome(space_id, "", "failed", error=f"Space {space_id} not found"), tally)
        else:
            raw_items.append(raw)
    futures, _whole = pipeline.handle_page(raw_items, tally)
    pipeline.heard_page(PageRead(spaces=len(unique_ids), items=len(unique_ids)))
    _wait_all(futures)
    return pipeline.fatal is None and not pipeline.limit_reached


Progress = Checkpoint | RunProgress


def _run_scan(pipeline: Pipeline) -> bool:
    """Scan this process's segments, one scanner thread each; True when every one was read to its end."""
    plan, total = pipeline.job.plan()
    progress = _progress_of(pipeline.job, plan, total)
    pending = []
    for seg in plan:
        if progress.is_done(seg):
            pipeline.report.segments_skipped += 1
        else:
            if progress.start_key(seg) is not None:
                pipeline.report.segments_resumed += 1
            pending.append(seg)
    if pending:
        with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="backfill-scan") as scanners:
            _wait_all([scanners.submit(_scan_segment, pipeline, progress, seg, total) for seg in pending])
    if pipeline.fatal is not None:
        return False
    complete = all(progress.is_done(seg) for seg in plan)
    _mark_legacy_codes_recorded(pipeline, progress, complete=complete, rerun_of_finished=not pending)
    return complete


def _progress_of(job: Job, plan: list[int], total: int) -> Progress:
    if job.run_name is not None:
        return RunProgress(job.run_name, kind=job.mode, total_segments=total, segments=plan)
    table = current_binding().table_name
    return Checkpoint(job.checkpoint_path, table_name=table, total_segments=total, segments=plan, kind=job.mode)


def _mark_legacy_codes_recorded(
    pipeline: Pipeline, progress: Progress, *, complete: bool, rerun_of_finished: bool
) -> None:
    """Set the table flag once every code of a legacy table has a claim.

    A run in DynamoDB: the worker that finished the run's last segment does it
    (or a rerun that finds its segments done, finishing a crash). Otherwise: a
    complete, failure-free, untargeted run over all segments (resumed runs too).
    """
    job, report = pipeline.job, pipeline.report
    if isinstance(progress, RunProgress):
        if job.run_name and (progress.completed_run or (complete and rerun_of_finished)):
            report.marked_legacy_codes_recorded = run_finish(name=job.run_name, by=f"{job.source} --run {job.run_name}")
        return
    recorded_every_code = (
        pipeline.record_legacy
        and not job.dry_run
        and job.segment is None
        and not report.failed
        and not progress.had_failures
    )
    if complete and recorded_every_code:
        engine.mark_legacy_codes_recorded(by=job.source)
        report.marked_legacy_codes_recorded = True


@dataclass(frozen=True)
class _ScanPage:
    items: list[dict[str, Any]]
    resume_key: dict[str, Any] | None
    scanned: int  # items DynamoDB read for this page, of every kind


def _scan_segment(pipeline: Pipeline, progress: Progress, segment: int, total: int) -> None:
    """One scanner: read pages, hand them to the workers, record each finished page."""
    pages = _scan_pages(
        segment=segment if total > 1 else None,
        total_segments=total if total > 1 else None,
        start_key=progress.start_key(segment),
        page_size=pipeline.job.page_size,
    )
    try:
        current = next(pages, None)
        while current is not None and not pipeline.stop.is_set():
            current = _handle_scanned_page(pipeline, progress, segment, current, pages)
    except BaseException as exc:  # surfaced by the caller
        pipeline.fail_run(exc)


def _handle_scanned_page(
    pipeline: Pipeline, progress: Progress, segment: int, page: _ScanPage, pages: Iterator[_ScanPage]
) -> _ScanPage | None:
    """Hand one page to the workers (reading the next meanwhile) and record it; the next page, or None to stop."""
    tally = PageTally()
    futures, whole = pipeline.handle_page(page.items, tally)
    pipeline.heard_page(PageRead(spaces=len(page.items), items=page.scanned))
    upcoming = next(pages, None) if page.resume_key is not None and whole and not pipeline.stop.is_set() else None
    _wait_all(futures)
    if pipeline.fatal is not None:
        return None
    if not whole:  # --limit cut this page short: it is not finished, a rerun reads it again
        pipeline.stop.set()
        return None
    if not progress.advance(segment, page.resume_key, tally):
        holder = progress.holder(segment) if isinstance(progress, RunProgress) else "another worker"
        with pipeline.lock:
            pipeline.report.segments_left_to_others.append((segment, holder))
        return None
    if pipeline.limit_reached:
        pipeline.stop.set()
        return None
    return upcoming


def _scan_pages(
    *, segment: int | None, total_segments: int | None, start_key: dict[str, Any] | None, page_size: int
) -> Iterator[_ScanPage]:
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
        items = page.get("Items", [])
        yield _ScanPage(items=items, resume_key=key, scanned=int(page.get("ScannedCount", len(items))))
        if key is None:
            return


def _wait_all(futures: list[Future[None]]) -> None:
    for future in futures:
        future.result()
