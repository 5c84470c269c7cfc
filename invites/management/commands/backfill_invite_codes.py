"""``manage.py backfill_invite_codes``: give every space without an invite code one.

A front door over :func:`invites.backfill.backfill_missing_codes` (and, with
``--processes``, :func:`invites.backfill.processes.backfill_in_processes`):
arguments, the guide's log lines and a progress bar (``_backfill_report.py``),
and the exit status (:data:`EXIT_STATUSES`). See docs/backfill.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import math
import os
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from pynamodb.exceptions import PynamoDBException

from invites.backfill import (
    MODE_BACKFILL,
    MODE_REPLACE_LEGACY,
    BackfillConfigError,
    BackfillReport,
    BackfillWorkerDied,
    backfill_missing_codes,
)
from invites.backfill.checkpoint import ensure_checkpoint_writable
from invites.backfill.job import MAX_PROCESSES, MAX_SEGMENTS, MAX_TOTAL_SEGMENTS, MAX_WORKERS
from invites.backfill.placement import Placement, placement_from
from invites.backfill.processes import ProcessPlan, backfill_in_processes
from invites.backfill.run_state import RunShape, run_finish, run_register, run_status
from invites.management.commands._backfill_report import (
    RULE,
    JsonReportWriter,
    SpaceLog,
    log_status,
    log_summary,
)
from spaces.dynamodb import DynamoUnavailable, configure, current_binding, ensure_table_reachable, short_reason

__all__ = ["PROBE_CONNECT_TIMEOUT", "RULE", "RUN_MAX_ATTEMPTS", "RUN_RETRY_MODE", "Command", "command_logger"]

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"
# Probe the endpoint with these before the run: an unreachable DynamoDB must
# fail within seconds with one line, not after minutes of retries.
PROBE_CONNECT_TIMEOUT = 2.0
# During the run: botocore's adaptive mode backs off and rate-limits itself on throttling.
RUN_RETRY_MODE = "adaptive"
RUN_MAX_ATTEMPTS = 10

EXIT_STATUSES = """exit status:
  0  nothing failed; also a worker that found its segment advanced by another worker of the same
     run (a scheduler's duplicate) and left it to that one, and --status whatever the progress
  1  some spaces failed: each is logged with its error and the run went on
  2  unusable arguments or settings, an output file that cannot be written, DynamoDB or the table
     cannot be reached (or the endpoint is not DynamoDB), or a worker process died: one line"""


T = TypeVar("T", int, float)


def number_type(
    convert: Callable[[str], T], *, minimum: T, inclusive: bool, name: str, maximum: T | None = None
) -> Callable[[str], T]:
    """An argparse ``type`` that refuses numbers out of bounds, NaN and infinities (argparse names it in its error)."""

    def parse(text: str) -> T:
        value = convert(text)
        # Written as "is it acceptable", so NaN (which compares false to everything) is refused.
        acceptable = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
        if not acceptable or (maximum is not None and value > maximum):
            raise ValueError(text)
        return value

    parse.__name__ = name
    return parse


def bounded_int(maximum: int, *, minimum: int = 1) -> Callable[[str], int]:
    return number_type(
        int, minimum=minimum, inclusive=True, maximum=maximum, name=f"whole number from {minimum} to {maximum:,}"
    )


positive_int = number_type(int, minimum=1, inclusive=True, name="positive whole number")
non_negative_int = number_type(int, minimum=0, inclusive=True, name="whole number")
positive_float = number_type(float, minimum=0.0, inclusive=False, name="positive finite number")


def command_logger(name: str, stream: Any) -> tuple[logging.Logger, logging.Handler]:
    """A logger writing the guide's format to ``stream`` (the command's stdout) only.

    Django wraps the command's stdout (``OutputWrapper``); the handler writes to
    the stream inside, the same bytes, so that tqdm's logging redirect knows
    the real stdout when a progress bar is drawn.
    """
    log = logging.getLogger(name)
    handler = logging.StreamHandler(getattr(stream, "_out", stream))
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return log, handler


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of options, and the exit statuses as written."""


class Command(BaseCommand):
    help = (
        "Give every space without an invite code a new one (streaming, parallel, resumable); "
        "--replace-legacy-codes replaces codes not in the current format instead."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("epilog", EXIT_STATUSES)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would change; write nothing.")
        parser.add_argument(
            "--replace-legacy-codes",
            action="store_true",
            help="Instead of giving spaces without a code one, give every space whose code is not in the current "
            "format (8 characters of the alphabet, upper case) a new code; a space whose code changed since the "
            "scan is skipped. Resumable, with --dry-run and --report, like the backfill.",
        )
        self._add_scan_arguments(parser)
        self._add_run_arguments(parser)
        parser.add_argument(
            "--max-writes-per-second",
            type=positive_float,
            default=None,
            help="Cap this run's DynamoDB item writes per second (default: no cap; shared by --processes).",
        )
        parser.add_argument(
            "--checkpoint",
            default=None,
            metavar="FILE",
            help="Record finished scan pages in FILE; rerun with the same FILE to continue after a stop (one process).",
        )
        parser.add_argument(
            "--space-id",
            action="append",
            dest="space_ids",
            default=None,
            metavar="ID",
            help="Only this space (repeatable); no scan.",
        )
        parser.add_argument("--limit", type=positive_int, default=None, help="Stop after this many spaces worked on.")
        parser.add_argument(
            "--report", default=None, metavar="FILE.json", help="Write every change and failure, counts and timing."
        )
        parser.add_argument(
            "--per-space-log-limit",
            type=non_negative_int,
            default=None,
            help="Log per-space lines for this many spaces worked on; the rest need -v 2 "
            f"(default {settings.BACKFILL_PER_SPACE_LOG_LIMIT}).",
        )

    def _add_scan_arguments(self, parser: ArgumentParser) -> None:
        """How the scan is split: over threads on this machine, or over machines."""
        parser.add_argument(
            "--segments",
            type=bounded_int(MAX_SEGMENTS),
            default=None,
            help=f"Parallel scan segments (threads) in one process (default {settings.BACKFILL_SEGMENTS}, "
            f"at most {MAX_SEGMENTS}).",
        )
        parser.add_argument(
            "--workers",
            type=bounded_int(MAX_WORKERS),
            default=None,
            help=f"Threads writing codes, per process (default {settings.BACKFILL_WORKERS}, at most {MAX_WORKERS}).",
        )
        parser.add_argument(
            "--segment",
            type=non_negative_int,
            default=None,
            help="This worker's segment (0-based) of --total-segments: split one backfill over machines. "
            "Default: JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch).",
        )
        parser.add_argument(
            "--total-segments",
            type=bounded_int(MAX_TOTAL_SEGMENTS),
            default=None,
            help="How many workers (machines) the backfill is split over (default: BACKFILL_TOTAL_SEGMENTS).",
        )
        parser.add_argument(
            "--processes",
            type=bounded_int(MAX_PROCESSES),
            default=1,
            help="Worker processes on this machine, one scan segment each (default 1): with M machines the "
            "table is scanned in M x P segments.",
        )

    def _add_run_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--run",
            dest="run_name",
            default=None,
            metavar="NAME",
            help="Keep the run's progress in DynamoDB under NAME, shared by every worker of the run on any "
            "machine; a worker started again continues where its segment stopped.",
        )
        parser.add_argument(
            "--status",
            action="store_true",
            help="With --run NAME: print each segment's progress and the total, then exit (writes nothing, "
            "except the legacy-codes flag of a complete run whose last worker stopped before setting it).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _refuse_combinations(options)
        log, handler = command_logger("invites.commands.backfill", self.stdout)
        engine_logger = logging.getLogger("invites")
        engine_level = engine_logger.level
        if options["verbosity"] < 3:
            # The engine's audit line per change would double every per-space line.
            engine_logger.setLevel(logging.WARNING)
        report_file: JsonReportWriter | None = None
        try:
            placement = placement_from(
                segment=options["segment"],
                total_segments=options["total_segments"],
                processes=options["processes"],
                default_total=settings.BACKFILL_TOTAL_SEGMENTS,
                environ=os.environ,
            )
            report_file = self._prepare_outputs(options)
            items = self._connect(options, placement)
            if options["status"]:
                self._status(options, log)
                return
            report = self._backfill(options, log, report_file, placement, items)
        except (DynamoUnavailable, BackfillConfigError, BackfillWorkerDied) as exc:
            _abandon(report_file, str(exc))
            raise CommandError(str(exc), returncode=2) from None
        except (PynamoDBException, BotoCoreError) as exc:
            if options.get("traceback"):
                raise
            _abandon(report_file, short_reason(exc))
            raise CommandError(f"DynamoDB refused the backfill: {short_reason(exc)}", returncode=2) from None
        finally:
            engine_logger.setLevel(engine_level)
            log.removeHandler(handler)
        _close_report(report_file, report)
        if report.failed:
            raise CommandError(f"{len(report.failed)} space(s) failed; see the summary above", returncode=1)

    def _prepare_outputs(self, options: dict[str, Any]) -> JsonReportWriter | None:
        """Every file the run writes, checked (and the report opened) before anything talks to DynamoDB."""
        if options["status"]:
            return None
        if options["checkpoint"]:
            ensure_checkpoint_writable(options["checkpoint"])
        path = options["report"]
        if not path:
            return None
        try:
            return JsonReportWriter(path)
        except OSError as exc:
            raise CommandError(f"cannot write the report file {path}: {exc.strerror or exc}", returncode=2) from None

    def _connect(self, options: dict[str, Any], placement: Placement) -> int | None:
        """Adaptive retries and a pool for every thread, a probe of the table, and its item count.

        The settings apply when this process has not talked to DynamoDB yet (a
        command run on its own); inside a process that has (the test suite), the
        process keeps its connection. The probe opens a TCP connection with a
        short timeout before any API call, so an unreachable endpoint fails within
        seconds despite the generous retry policy of the run; DescribeTable's
        answer must then be DynamoDB's.
        """
        scanners = (
            1 if placement.split or placement.processes > 1 else (options["segments"] or settings.BACKFILL_SEGMENTS)
        )
        threads = (options["workers"] or settings.BACKFILL_WORKERS) + scanners
        configure(
            retry_mode=RUN_RETRY_MODE,
            max_attempts=RUN_MAX_ATTEMPTS,
            max_pool_connections=max(settings.DYNAMODB_MAX_POOL_CONNECTIONS, threads + 2),
        )
        try:
            return ensure_table_reachable(connect_timeout=min(current_binding().connect_timeout, PROBE_CONNECT_TIMEOUT))
        except ValueError as exc:  # botocore refuses the endpoint before any call
            raise DynamoUnavailable(f"DYNAMODB_HOST {current_binding().host!r} cannot be used: {exc}") from None

    def _status(self, options: dict[str, Any], log: logging.Logger) -> None:
        name = options["run_name"]
        status = run_status(name=name)
        if status is None:
            raise CommandError(
                f"no backfill run named {name!r} in table {current_binding().table_name!r}", returncode=2
            )
        marked = False
        if status.complete and not status.legacy_codes_recorded:
            marked = run_finish(name=name, by=f"backfill_invite_codes --run {name} --status")
            if marked:
                status = dataclasses.replace(status, legacy_codes_recorded=True)
        log_status(log, status, verbosity=options["verbosity"], marked_now=marked)

    def _backfill(
        self,
        options: dict[str, Any],
        log: logging.Logger,
        report_file: JsonReportWriter | None,
        placement: Placement,
        items: int | None,
    ) -> BackfillReport:
        mode = MODE_REPLACE_LEGACY if options["replace_legacy_codes"] else MODE_BACKFILL
        log.info(RULE)
        log.info(
            "Starting invite code backfill process"
            if mode == MODE_BACKFILL
            else "Starting legacy invite code replacement"
        )
        log.info(RULE)
        if options["dry_run"]:
            log.info("DRY RUN MODE - No changes will be made")
        log.info("Scanning DynamoDB for all spaces...")
        service = _service_options(options, mode)
        if options["run_name"]:
            run_register(name=options["run_name"], shape=_run_shape(options, placement, mode))
        per_space_limit = options["per_space_log_limit"]
        if per_space_limit is None:
            per_space_limit = settings.BACKFILL_PER_SPACE_LOG_LIMIT
        space_ids = options["space_ids"]
        with SpaceLog(
            log,
            verbosity=options["verbosity"],
            per_space_limit=per_space_limit,
            report_file=report_file,
            mode=mode,
            items_estimate=None if items is None else items / placement.machines,
            exact_total=len(set(space_ids)) if space_ids else None,
        ) as space_log:
            report = _run(service, placement, options, space_log)
        log_summary(log, report, checkpoint=options["checkpoint"])
        return report


def _run(service: dict[str, Any], placement: Placement, options: dict[str, Any], space_log: SpaceLog) -> BackfillReport:
    if placement.processes > 1:
        plan = ProcessPlan(placement.processes, placement.first_segment, placement.total_segments)
        return backfill_in_processes(
            plan=plan,
            options=service,
            on_space=space_log.on_space,
            on_page=space_log.on_page,
            quiet_engine=options["verbosity"] < 3,
        )
    split = {"segment": placement.machine, "total_segments": placement.machines} if placement.split else {}
    return backfill_missing_codes(**service, **split, on_space=space_log.on_space, on_page=space_log.on_page)


def _service_options(options: dict[str, Any], mode: str) -> dict[str, Any]:
    """The service's arguments, as the command's options give them (segments and the split apart)."""
    service: dict[str, Any] = {
        "dry_run": options["dry_run"],
        "limit": options["limit"],
        "workers": options["workers"],
        "max_writes_per_second": options["max_writes_per_second"],
        "run_name": options["run_name"],
        "source": "backfill_invite_codes",
        "collect_changes": False,
        "mode": mode,
    }
    if options["processes"] == 1:
        service.update(
            space_ids=options["space_ids"], segments=options["segments"], checkpoint_path=options["checkpoint"]
        )
    return service


def _run_shape(options: dict[str, Any], placement: Placement, mode: str) -> RunShape:
    if placement.split or placement.processes > 1:
        return RunShape(mode, placement.machines, placement.processes, placement.total_segments)
    segments = options["segments"] or settings.BACKFILL_SEGMENTS
    return RunShape(mode, 1, 1, segments)


def _refuse_combinations(options: dict[str, Any]) -> None:
    """Options that cannot go together: one line and status 2, before anything is read or written."""
    refusals = [
        (
            options["segment"] is not None and options["segments"] is not None,
            "--segments splits the scan on this machine; with --segment this machine scans one segment only",
        ),
        (
            options["processes"] > 1 and options["segments"] is not None,
            "--segments splits the scan over threads of one process; with --processes each process scans one segment",
        ),
        (
            options["processes"] > 1 and bool(options["checkpoint"]),
            "--checkpoint is for one process; with --processes keep the progress in DynamoDB with --run NAME",
        ),
        (
            options["processes"] > 1 and (options["space_ids"] is not None or options["limit"] is not None),
            "--space-id and --limit work in one process; drop --processes",
        ),
        (options["status"] and not options["run_name"], "--status shows a run's progress: give --run NAME"),
    ]
    for refused, message in refusals:
        if refused:
            raise CommandError(message, returncode=2)


def _abandon(report_file: JsonReportWriter | None, error: str) -> None:
    if report_file is not None:
        with contextlib.suppress(OSError):  # the error being raised says more
            report_file.close(None, error=error)


def _close_report(report_file: JsonReportWriter | None, report: BackfillReport) -> None:
    if report_file is None:
        return
    try:
        report_file.close(report)
    except OSError as exc:
        raise CommandError(
            f"cannot write the report file {report_file.path}: {exc.strerror or exc} "
            f"(the run itself finished: {report.updated} updated, {len(report.failed)} failed)",
            returncode=2,
        ) from None
