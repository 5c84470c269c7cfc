"""What ``backfill_invite_codes`` prints and writes: per-space lines, the summary, the JSON report file."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

from tqdm import tqdm

from invites.backfill import BackfillReport, SpaceOutcome

RULE = "=" * 60


class SpaceLog:
    """Logs each space's outcome as the backfill reports it (its ``on_space``), and draws the progress bar.

    Per-space lines go to the first ``per_space_limit`` spaces without a code at
    verbosity 1, to all of them at 2, to none at 0; failures and codes held by
    two spaces are always logged. The bar (tqdm) is drawn on stderr when it is
    a terminal. Use it as a context manager, so the bar is closed however the
    run ends.
    """

    def __init__(
        self,
        log: logging.Logger,
        *,
        verbosity: int,
        per_space_limit: int,
        report_file: JsonReportWriter | None,
    ) -> None:
        self.log = log
        self.verbosity = verbosity
        self.per_space_limit = per_space_limit
        self.report_file = report_file
        self._seen = 0
        self._lock = threading.Lock()
        self._progress = tqdm(
            desc="Spaces without a code", unit="space", file=sys.stderr, disable=not sys.stderr.isatty()
        )

    def __enter__(self) -> SpaceLog:
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.close()

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
        self._progress.update(1)
        chatty = self._count_space()
        if outcome.status == "failed":
            self.log.error(
                "Failed to add invite code to space '%s' (ID: %s): %s", outcome.name, outcome.space_id, outcome.error
            )
        elif chatty:
            self._log_handled(outcome)

    def _count_space(self) -> bool:
        """Count one more space without a code; returns whether its per-space lines are wanted."""
        with self._lock:
            self._seen += 1
            index = self._seen
        if index == self.per_space_limit + 1 and self.verbosity < 2:
            self.log.info(
                "More than %d spaces without invite codes: further per-space lines only with -v 2",
                self.per_space_limit,
            )
        return self.verbosity >= 2 or (self.verbosity == 1 and index <= self.per_space_limit)

    def _log_handled(self, outcome: SpaceOutcome) -> None:
        name, space_id = outcome.name, outcome.space_id
        self.log.info("Space '%s' (ID: %s) is missing invite code", name, space_id)
        if outcome.status == "would_update":
            self.log.info("[DRY RUN] Would add invite code to space '%s' (ID: %s)", name, space_id)
        elif outcome.status == "updated":
            self.log.info("✓ Added invite code '%s' to space '%s' (ID: %s)", outcome.new_code, name, space_id)
        else:
            self.log.info("Space '%s' (ID: %s) received an invite code meanwhile; skipped", name, space_id)


def log_summary(log: logging.Logger, report: BackfillReport, *, checkpoint: str | None) -> None:
    """What the scan found, then the guide's summary block."""
    _log_findings(log, report, checkpoint=checkpoint)
    log.info(RULE)
    log.info("BACKFILL SUMMARY")
    log.info(RULE)
    log.info("Total spaces processed: %d", report.processed)
    log.info("Successfully updated: %d", report.updated)
    if report.skipped_already_had_code:
        log.info("Skipped (already had a code): %d", report.skipped_already_had_code)
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
    if report.segments_skipped or report.segments_resumed:
        log.info(
            "Checkpoint %s: %d segment(s) already finished, %d resumed",
            checkpoint,
            report.segments_skipped,
            report.segments_resumed,
        )
    if report.total_spaces == 0 and not report.failed and not report.segments_skipped:
        log.info("No spaces found in the database")
    else:
        log.info("Found %d total spaces", report.total_spaces)
        log.info("Found %d spaces without invite codes", report.missing)
        if report.missing == 0 and not report.failed:
            log.info("All spaces already have invite codes!")
    if report.legacy_codes_recorded:
        log.info("Recorded %d existing invite codes", report.legacy_codes_recorded)
    if report.marked_legacy_codes_recorded:
        log.info("Every existing invite code is now recorded")
    if not report.complete:
        log.info("Stopped before the end of the table (--limit); run again to continue")


class JsonReportWriter:
    """``--report FILE.json``: changes are streamed into the file as they happen.

    The file is one JSON object, ``{"changes": [...], "summary": {...}}``;
    changes are written while the run goes, so memory stays flat however many
    spaces are fixed. Call :meth:`add` per outcome and :meth:`close` at the end.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._handle = self.path.open("w", encoding="utf-8")
        self._handle.write('{"changes": [')
        self._first = True
        self._lock = threading.Lock()

    def add(self, outcome: SpaceOutcome) -> None:
        if not outcome.is_change:
            return
        entry = json.dumps({"space_id": outcome.space_id, "name": outcome.name, "new_code": outcome.new_code})
        with self._lock:
            self._handle.write(("\n" if self._first else ",\n") + entry)
            self._first = False

    def close(self, report: BackfillReport | None, *, error: str | None = None) -> None:
        """End the file with the report's summary, or with ``error`` when the run could not finish."""
        summary = report.as_dict() if report is not None else {"error": error}
        with self._lock:
            self._handle.write('\n], "summary": ' + json.dumps(summary, indent=2) + "}\n")
            self._handle.close()
