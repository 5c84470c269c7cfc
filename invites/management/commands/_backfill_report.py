"""What ``backfill_invite_codes`` prints and writes: per-space lines, the progress bar, the summary,
a run's status, the JSON report file."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from invites.backfill import MODE_BACKFILL, BackfillReport, PageRead, SpaceOutcome
from invites.backfill.run_state import RunStatus

RULE = "=" * 60

# The bar counts spaces scanned; its total is DescribeTable's item count scaled by the share of
# spaces among the items read so far: an estimate, and marked as one.
ESTIMATED_BAR = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/~{total_fmt} spaces (total estimated) "
    "[{elapsed}<{remaining}, {rate_fmt}]"
)
EXACT_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} spaces [{elapsed}<{remaining}, {rate_fmt}]"
UNKNOWN_TOTAL_BAR = "{desc}: {n_fmt} spaces [{elapsed}, {rate_fmt}]"


class ProgressBar:
    """tqdm on stderr when it is a terminal: spaces scanned, of a total that is exact (``--space-id``) or estimated."""

    def __init__(self, *, items_estimate: float | None, exact_total: int | None) -> None:
        self.items_estimate = items_estimate
        self.exact = exact_total is not None
        self._spaces = 0
        self._items = 0
        total = exact_total if self.exact else (round(items_estimate) if items_estimate else None)
        bar_format = EXACT_BAR if self.exact else ESTIMATED_BAR if total else UNKNOWN_TOTAL_BAR
        self.bar = tqdm(
            desc="Spaces scanned",
            total=total,
            unit=" spaces",
            bar_format=bar_format,
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
        )

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def on_page(self, page: PageRead) -> None:
        self._spaces += page.spaces
        self._items += page.items
        if not self.exact and self.items_estimate and self._items:
            share_of_spaces = self._spaces / self._items
            self.bar.total = max(self._spaces, round(self.items_estimate * share_of_spaces))
        self.bar.update(page.spaces)

    def close(self) -> None:
        self.bar.close()


class SpaceLog:
    """Logs each space's outcome as the backfill reports it (its ``on_space``), and draws the progress bar.

    Per-space lines go to the first ``per_space_limit`` spaces worked on at
    verbosity 1, to all of them at 2, to none at 0; failures and codes held by
    two spaces are always logged. While the bar is drawn, log lines are
    written through tqdm (``logging_redirect_tqdm``), so a line never lands
    in the middle of the bar. Use it as a context manager, so the bar is
    closed however the run ends.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        verbosity: int,
        per_space_limit: int,
        report_file: JsonReportWriter | None,
        mode: str = MODE_BACKFILL,
        items_estimate: float | None = None,
        exact_total: int | None = None,
    ) -> None:
        self.log = log
        self.verbosity = verbosity
        self.per_space_limit = per_space_limit
        self.report_file = report_file
        self.mode = mode
        self._seen = 0
        self._lock = threading.Lock()
        self._progress = ProgressBar(items_estimate=items_estimate, exact_total=exact_total)
        self._stack = ExitStack()

    def __enter__(self) -> SpaceLog:
        if self._progress.enabled:
            self._stack.enter_context(logging_redirect_tqdm(loggers=[self.log]))
        return self

    def __exit__(self, *_: object) -> None:
        self._stack.close()
        self._progress.close()

    def on_page(self, page: PageRead) -> None:
        self._progress.on_page(page)

    def on_space(self, outcome: SpaceOutcome) -> None:
        if self.report_file is not None:
            self.report_file.add(outcome)
        if outcome.status == "duplicate_code":
            self.log.warning(
                "Space '%s' (ID: %s) holds invite code '%s', already claimed by space %s; "
                "run audit_invite_codes --repair",
                outcome.name,
                outcome.space_id,
                outcome.new_code,
                outcome.error,
            )
            return
        chatty = self._count_space()
        if outcome.status == "failed":
            if self.mode == MODE_BACKFILL:
                template = "Failed to add invite code to space '%s' (ID: %s): %s"
            else:
                template = "Failed to replace the invite code of space '%s' (ID: %s): %s"
            self.log.error(template, outcome.name, outcome.space_id, outcome.error)
        elif chatty:
            (_log_backfilled if self.mode == MODE_BACKFILL else _log_replaced)(self.log, outcome)

    def _count_space(self) -> bool:
        """Count one more space worked on; returns whether its per-space lines are wanted."""
        with self._lock:
            self._seen += 1
            index = self._seen
        if index == self.per_space_limit + 1 and self.verbosity == 1:
            self.log.info(
                "More than %d spaces %s: further per-space lines only with -v 2",
                self.per_space_limit,
                "without invite codes" if self.mode == MODE_BACKFILL else "with legacy-format invite codes",
            )
        return self.verbosity >= 2 or (self.verbosity == 1 and index <= self.per_space_limit)


def _log_backfilled(log: logging.Logger, outcome: SpaceOutcome) -> None:
    name, space_id = outcome.name, outcome.space_id
    log.info("Space '%s' (ID: %s) is missing invite code", name, space_id)
    if outcome.status == "would_update":
        log.info("[DRY RUN] Would add invite code to space '%s' (ID: %s)", name, space_id)
    elif outcome.status == "updated":
        log.info("✓ Added invite code '%s' to space '%s' (ID: %s)", outcome.new_code, name, space_id)
    else:
        log.info("Space '%s' (ID: %s) received an invite code meanwhile; skipped", name, space_id)


def _log_replaced(log: logging.Logger, outcome: SpaceOutcome) -> None:
    name, space_id = outcome.name, outcome.space_id
    log.info("Space '%s' (ID: %s) has legacy-format invite code '%s'", name, space_id, outcome.old_code)
    if outcome.status == "would_update":
        log.info("[DRY RUN] Would replace the invite code of space '%s' (ID: %s)", name, space_id)
    elif outcome.status == "updated":
        log.info(
            "✓ Replaced invite code '%s' of space '%s' (ID: %s) with '%s'",
            outcome.old_code,
            name,
            space_id,
            outcome.new_code,
        )
    else:
        log.info("Space '%s' (ID: %s) changed its invite code since the scan; skipped", name, space_id)


def log_summary(log: logging.Logger, report: BackfillReport, *, checkpoint: str | None) -> None:
    """What the scan found, then the guide's summary block."""
    _log_findings(log, report, checkpoint=checkpoint)
    log.info(RULE)
    log.info("BACKFILL SUMMARY")
    log.info(RULE)
    log.info("Total spaces processed: %d", report.processed)
    log.info("Successfully updated: %d", report.updated)
    if report.dry_run:
        log.info("Would update: %d; nothing was written", report.updated)
    if report.skipped_already_had_code:
        what = "already had a code" if report.mode == MODE_BACKFILL else "code changed since the scan"
        log.info("Skipped (%s): %d", what, report.skipped_already_had_code)
    log.info("Failed: %d", len(report.failed))
    for space_id, name, error in report.failed:
        log.info("  - '%s' (ID: %s): %s", name, space_id, error)
    if report.duplicate_codes:
        log.info("Codes held by two spaces: %d (run audit_invite_codes --repair)", len(report.duplicate_codes))
    log.info("")
    if report.dry_run:
        log.info("*** DRY RUN COMPLETE - No changes were made ***")
        log.info("Run without --dry-run to apply changes")
    else:
        log.info("*** BACKFILL COMPLETE ***")


def _log_findings(log: logging.Logger, report: BackfillReport, *, checkpoint: str | None) -> None:
    _log_resumption(log, report, checkpoint=checkpoint)
    if report.total_spaces == 0 and not report.failed and not report.segments_skipped:
        log.info("No spaces found in the database")
    else:
        log.info("Found %d total spaces", report.total_spaces)
        if report.mode == MODE_BACKFILL:
            log.info("Found %d spaces without invite codes", report.missing)
            if report.missing == 0 and not report.failed:
                log.info("All spaces already have invite codes!")
        else:
            log.info("Found %d spaces with legacy-format invite codes", report.missing)
            if report.missing == 0 and not report.failed:
                log.info("All invite codes are already in the current format!")
    if report.legacy_codes_recorded:
        log.info("Recorded %d existing invite codes", report.legacy_codes_recorded)
    if report.marked_legacy_codes_recorded:
        log.info("Every existing invite code is now recorded")
    for segment, worker in report.segments_left_to_others:
        log.info("Segment %d was advanced by another worker (%s) of the run; left to it", segment, worker)
    if not report.complete and not report.segments_left_to_others:
        log.info("Stopped before the end of the table (--limit); run again to continue")


def _log_resumption(log: logging.Logger, report: BackfillReport, *, checkpoint: str | None) -> None:
    if not (report.segments_skipped or report.segments_resumed):
        return
    where = f"Run '{report.run_name}'" if report.run_name else f"Checkpoint {checkpoint}"
    log.info("%s: %d segment(s) already finished, %d resumed", where, report.segments_skipped, report.segments_resumed)


def log_status(log: logging.Logger, status: RunStatus, *, verbosity: int, marked_now: bool) -> None:
    """``--run NAME --status``: each segment's progress, the total, and the legacy-codes flag."""
    log.info("Run '%s': %s; started %s", status.name, status.shape.describe(), status.created_at or "?")
    started = {segment.segment: segment for segment in status.segments}
    if verbosity >= 1:
        for index in range(status.shape.total_segments):
            segment = started.get(index)
            if segment is None:
                log.info("Segment %d: not started", index)
                continue
            counts = segment.counts
            log.info(
                "Segment %d: %s, %d page(s), %d spaces scanned, %d updated, %d skipped, %d failed (%s at %s)",
                index,
                "done" if segment.done else "in progress",
                segment.pages,
                counts["scanned"],
                counts["updated"],
                counts["skipped"],
                counts["failed"],
                segment.worker or "?",
                segment.updated_at or "?",
            )
    totals = status.totals()
    log.info(
        "Total: %d of %d segments done; %d spaces scanned, %d updated, %d skipped, %d failed, "
        "%d existing codes recorded",
        status.segments_done,
        status.shape.total_segments,
        totals["scanned"],
        totals["updated"],
        totals["skipped"],
        totals["failed"],
        totals["recorded"],
    )
    _log_flag(log, status, marked_now=marked_now)


def _log_flag(log: logging.Logger, status: RunStatus, *, marked_now: bool) -> None:
    if marked_now:
        log.info("Every existing invite code is now recorded (the run was complete; its last worker had not said so)")
    elif status.legacy_codes_recorded:
        log.info("Legacy codes: all recorded (the table flag is set)")
    elif status.shape.kind != MODE_BACKFILL:
        log.info("Legacy codes: not all recorded; a %s run does not record them", status.shape.kind)
    elif status.segments_failed:
        log.info(
            "Legacy codes: not all recorded: %d segment(s) finished with failed spaces; "
            "run the backfill again (a new --run name) or audit_invite_codes --repair",
            status.segments_failed,
        )
    else:
        log.info("Legacy codes: not all recorded yet; the worker that finishes the last segment records it")


class JsonReportWriter:
    """``--report FILE.json``: changes are streamed into the file as they happen.

    The file is one JSON object, ``{"changes": [...], "summary": {...}}``;
    changes are written while the run goes, so memory stays flat however many
    spaces are fixed. Opening writes the first bytes and flushes them to the
    device, so a path that cannot be written (no directory, a full device)
    fails before the run writes anything to DynamoDB. Call :meth:`add` per
    outcome and :meth:`close` at the end; a write that fails later is kept and
    raised by :meth:`close`.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._handle = self.path.open("w", encoding="utf-8")
        self._first = True
        self._lock = threading.Lock()
        self.error: OSError | None = None
        try:
            self._handle.write('{"changes": [')
            self._handle.flush()
            _sync(self._handle.fileno())
        except OSError:
            self._handle.close()
            raise

    def add(self, outcome: SpaceOutcome) -> None:
        if not outcome.is_change:
            return
        entry = {"space_id": outcome.space_id, "name": outcome.name, "new_code": outcome.new_code}
        if outcome.old_code is not None:
            entry["old_code"] = outcome.old_code
        with self._lock:
            if self.error is not None:
                return
            try:
                self._handle.write(("\n" if self._first else ",\n") + json.dumps(entry))
            except OSError as exc:
                self.error = exc
            self._first = False

    def close(self, report: BackfillReport | None, *, error: str | None = None) -> None:
        """End the file with the report's summary, or with ``error`` when the run could not finish.

        Raises the :class:`OSError` of the first write that failed.
        """
        summary = report.as_dict() if report is not None else {"error": error}
        with self._lock:
            try:
                if self.error is None:
                    self._handle.write('\n], "summary": ' + json.dumps(summary, indent=2) + "}\n")
                self._handle.close()
            except OSError as exc:
                self.error = self.error or exc
        if self.error is not None:
            raise self.error


def _sync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):  # pipes, terminals, special files
            raise
