"""``manage.py backfill_invite_codes``: give every space without an invite code one.

A front door over :func:`invites.backfill.backfill_missing_codes`: arguments,
the guide's log lines, a progress bar and the exit status. Exit 0 when nothing
failed, 1 when some spaces failed, 2 for unusable arguments or when DynamoDB
or the table cannot be reached. See docs/backfill.md.
"""

from __future__ import annotations

import logging
import sys
import threading
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from invites.backfill import (
    BackfillConfigError,
    BackfillReport,
    JsonReportWriter,
    SpaceOutcome,
    backfill_missing_codes,
)
from spaces.dynamodb import DynamoUnavailable, configure, current_binding, ensure_table_reachable

RULE = "=" * 60
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
# Probe the endpoint with these before the run: an unreachable DynamoDB must
# fail within seconds with one line, not after minutes of retries.
PROBE_CONNECT_TIMEOUT = 2.0
# During the run: botocore's adaptive mode backs off and rate-limits itself on throttling.
RUN_RETRY_MODE = "adaptive"
RUN_MAX_ATTEMPTS = 10


T = TypeVar("T", int, float)


def number_type(convert: Callable[[str], T], *, minimum: T, inclusive: bool, name: str) -> Callable[[str], T]:
    """An argparse ``type`` that refuses numbers below ``minimum`` (argparse names it in its error)."""

    def parse(text: str) -> T:
        value = convert(text)
        # Written as "is it acceptable", so NaN (which compares false to everything) is refused.
        acceptable = value >= minimum if inclusive else value > minimum
        if not acceptable:
            raise ValueError(text)
        return value

    parse.__name__ = name
    return parse


positive_int = number_type(int, minimum=1, inclusive=True, name="positive whole number")
non_negative_int = number_type(int, minimum=0, inclusive=True, name="whole number")
positive_float = number_type(float, minimum=0.0, inclusive=False, name="positive number")


def command_logger(name: str, stream: Any) -> tuple[logging.Logger, logging.Handler]:
    """A logger writing the guide's format to ``stream`` (the command's stdout) only."""
    log = logging.getLogger(name)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, handler


class Command(BaseCommand):
    help = "Give every space without an invite code a new one (streaming, parallel, resumable)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--segments",
            type=positive_int,
            default=None,
            help=f"Parallel scan segments on this machine (default {settings.BACKFILL_SEGMENTS}).",
        )
        parser.add_argument(
            "--workers",
            type=positive_int,
            default=None,
            help=f"Threads writing codes (default {settings.BACKFILL_WORKERS}).",
        )
        parser.add_argument(
            "--segment",
            type=non_negative_int,
            default=None,
            help="Scan only this segment (0-based) of --total-segments: split one backfill over machines.",
        )
        parser.add_argument(
            "--total-segments",
            type=positive_int,
            default=None,
            help="How many segments the backfill is split into across machines (with --segment).",
        )
        parser.add_argument(
            "--max-writes-per-second",
            type=positive_float,
            default=None,
            help="Cap this run's DynamoDB write calls per second (default: no cap).",
        )
        parser.add_argument(
            "--checkpoint",
            default=None,
            metavar="FILE",
            help="Record finished scan pages in FILE; rerun with the same FILE to continue after a stop.",
        )
        parser.add_argument(
            "--space-id",
            action="append",
            dest="space_ids",
            default=None,
            metavar="ID",
            help="Only this space (repeatable); no scan.",
        )
        parser.add_argument(
            "--limit", type=positive_int, default=None, help="Stop after this many spaces without a code."
        )
        parser.add_argument(
            "--report", default=None, metavar="FILE.json", help="Write every change and failure, counts and timing."
        )
        parser.add_argument(
            "--per-space-log-limit",
            type=non_negative_int,
            default=None,
            help="Log per-space lines for this many spaces without a code; the rest need -v 2 "
            f"(default {settings.BACKFILL_PER_SPACE_LOG_LIMIT}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["segment"] is not None and options["segments"] is not None:
            raise CommandError(
                "--segments splits the scan on this machine; with --segment this machine scans one segment only",
                returncode=2,
            )
        verbosity: int = options["verbosity"]
        log, handler = command_logger("invites.commands.backfill", self.stdout)
        engine_logger = logging.getLogger("invites")
        engine_level = engine_logger.level
        if verbosity < 3:
            # The engine's audit line per change would double every per-space line.
            engine_logger.setLevel(logging.WARNING)
        report_writer: JsonReportWriter | None = None
        try:
            report_writer = self._open_report(options["report"])
            self._connect(options)
            report = self._run(options, log, verbosity, report_writer)
        except DynamoUnavailable as exc:
            if report_writer is not None:
                report_writer.close(None, error=str(exc))
            raise CommandError(str(exc), returncode=2) from None
        except BackfillConfigError as exc:
            if report_writer is not None:
                report_writer.close(None, error=str(exc))
            raise CommandError(str(exc), returncode=2) from None
        finally:
            engine_logger.setLevel(engine_level)
            log.removeHandler(handler)
        if report_writer is not None:
            report_writer.close(report)
        if report.failed:
            raise CommandError(f"{len(report.failed)} space(s) failed; see the summary above", returncode=1)

    def _open_report(self, path: str | None) -> JsonReportWriter | None:
        if not path:
            return None
        try:
            return JsonReportWriter(path)
        except OSError as exc:
            raise CommandError(f"cannot write the report file {path}: {exc.strerror}", returncode=2) from None

    def _connect(self, options: dict[str, Any]) -> None:
        """Adaptive retries and a pool for every thread, then a probe of the table.

        The settings apply when this process has not talked to DynamoDB yet (a
        command run on its own); inside a process that has (the test suite), the
        process keeps its connection. The probe opens a TCP connection with a
        short timeout before any API call, so an unreachable endpoint fails within
        seconds despite the generous retry policy of the run.
        """
        threads = (options["workers"] or settings.BACKFILL_WORKERS) + (
            options["segments"] or settings.BACKFILL_SEGMENTS
        )
        configure(
            retry_mode=RUN_RETRY_MODE,
            max_attempts=RUN_MAX_ATTEMPTS,
            max_pool_connections=max(settings.DYNAMODB_MAX_POOL_CONNECTIONS, threads + 2),
        )
        ensure_table_reachable(connect_timeout=min(current_binding().connect_timeout, PROBE_CONNECT_TIMEOUT))

    def _run(
        self, options: dict[str, Any], log: logging.Logger, verbosity: int, report_writer: JsonReportWriter | None
    ) -> BackfillReport:
        dry_run: bool = options["dry_run"]
        per_space_limit = options["per_space_log_limit"]
        if per_space_limit is None:
            per_space_limit = settings.BACKFILL_PER_SPACE_LOG_LIMIT
        log.info(RULE)
        log.info("Starting invite code backfill process")
        log.info(RULE)
        if dry_run:
            log.info("DRY RUN MODE - No changes will be made")
        log.info("Scanning DynamoDB for all spaces...")
        progress = tqdm(desc="Spaces without a code", unit="space", file=sys.stderr, disable=not sys.stderr.isatty())
        seen = 0
        seen_lock = threading.Lock()

        def on_space(outcome: SpaceOutcome) -> None:
            nonlocal seen
            if report_writer is not None:
                report_writer.add(outcome)
            if outcome.status == "duplicate_code":
                log.warning(
                    "Space '%s' (ID: %s) holds invite code '%s', already claimed by space %s; "
                    "run audit_invite_codes --repair",
                    outcome.name,
                    outcome.space_id,
                    outcome.new_code,
                    outcome.error,
                )
                return
            progress.update(1)
            with seen_lock:
                seen += 1
                index = seen
            if index == per_space_limit + 1 and verbosity < 2:
                log.info(
                    "More than %d spaces without invite codes: further per-space lines only with -v 2",
                    per_space_limit,
                )
            chatty = verbosity >= 2 or (verbosity == 1 and index <= per_space_limit)
            if outcome.status == "failed":
                log.error(
                    "Failed to add invite code to space '%s' (ID: %s): %s",
                    outcome.name,
                    outcome.space_id,
                    outcome.error,
                )
                return
            if not chatty:
                return
            log.info("Space '%s' (ID: %s) is missing invite code", outcome.name, outcome.space_id)
            if outcome.status == "would_update":
                log.info("[DRY RUN] Would add invite code to space '%s' (ID: %s)", outcome.name, outcome.space_id)
            elif outcome.status == "updated":
                log.info(
                    "✓ Added invite code '%s' to space '%s' (ID: %s)", outcome.new_code, outcome.name, outcome.space_id
                )
            else:
                log.info(
                    "Space '%s' (ID: %s) received an invite code meanwhile; skipped", outcome.name, outcome.space_id
                )

        try:
            report = backfill_missing_codes(
                dry_run=dry_run,
                limit=options["limit"],
                space_ids=options["space_ids"],
                segments=options["segments"],
                workers=options["workers"],
                segment=options["segment"],
                total_segments=options["total_segments"],
                max_writes_per_second=options["max_writes_per_second"],
                checkpoint_path=options["checkpoint"],
                on_space=on_space,
                source="backfill_invite_codes",
                collect_changes=False,
            )
        finally:
            progress.close()
        self._summarize(report, log, options)
        return report

    def _summarize(self, report: BackfillReport, log: logging.Logger, options: dict[str, Any]) -> None:
        if report.segments_skipped or report.segments_resumed:
            log.info(
                "Checkpoint %s: %d segment(s) already finished, %d resumed",
                options["checkpoint"],
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
