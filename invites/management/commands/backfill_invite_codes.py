"""``manage.py backfill_invite_codes``: give every space without an invite code one.

A front door over :func:`invites.backfill.backfill_missing_codes`: arguments,
the guide's log lines and a progress bar (``_backfill_report.py``), and the exit
status. Exit 0 when nothing failed, 1 when some spaces failed, 2 for unusable
arguments or when DynamoDB or the table cannot be reached. See docs/backfill.md.
"""

from __future__ import annotations

import logging
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from invites.backfill import BackfillConfigError, BackfillReport, backfill_missing_codes
from invites.management.commands._backfill_report import RULE, JsonReportWriter, SpaceLog, log_summary
from spaces.dynamodb import DynamoUnavailable, configure, current_binding, ensure_table_reachable

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
        self._add_scan_arguments(parser)
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

    def _add_scan_arguments(self, parser: ArgumentParser) -> None:
        """How the scan is split: over threads on this machine, or over machines."""
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

    def handle(self, *args: Any, **options: Any) -> None:
        if options["segment"] is not None and options["segments"] is not None:
            raise CommandError(
                "--segments splits the scan on this machine; with --segment this machine scans one segment only",
                returncode=2,
            )
        log, handler = command_logger("invites.commands.backfill", self.stdout)
        engine_logger = logging.getLogger("invites")
        engine_level = engine_logger.level
        if options["verbosity"] < 3:
            # The engine's audit line per change would double every per-space line.
            engine_logger.setLevel(logging.WARNING)
        report_file: JsonReportWriter | None = None
        try:
            report_file = self._open_report(options["report"])
            self._connect(options)
            report = self._backfill(options, log, report_file)
        except (DynamoUnavailable, BackfillConfigError) as exc:
            if report_file is not None:
                report_file.close(None, error=str(exc))
            raise CommandError(str(exc), returncode=2) from None
        finally:
            engine_logger.setLevel(engine_level)
            log.removeHandler(handler)
        if report_file is not None:
            report_file.close(report)
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

    def _backfill(
        self, options: dict[str, Any], log: logging.Logger, report_file: JsonReportWriter | None
    ) -> BackfillReport:
        log.info(RULE)
        log.info("Starting invite code backfill process")
        log.info(RULE)
        if options["dry_run"]:
            log.info("DRY RUN MODE - No changes will be made")
        log.info("Scanning DynamoDB for all spaces...")
        per_space_limit = options["per_space_log_limit"]
        if per_space_limit is None:
            per_space_limit = settings.BACKFILL_PER_SPACE_LOG_LIMIT
        with SpaceLog(
            log, verbosity=options["verbosity"], per_space_limit=per_space_limit, report_file=report_file
        ) as space_log:
            report = backfill_missing_codes(
                dry_run=options["dry_run"],
                limit=options["limit"],
                space_ids=options["space_ids"],
                segments=options["segments"],
                workers=options["workers"],
                segment=options["segment"],
                total_segments=options["total_segments"],
                max_writes_per_second=options["max_writes_per_second"],
                checkpoint_path=options["checkpoint"],
                on_space=space_log.on_space,
                source="backfill_invite_codes",
                collect_changes=False,
            )
        log_summary(log, report, checkpoint=options["checkpoint"])
        return report
