"""``manage.py audit_invite_codes [--repair]``: find and fix invite-code inconsistencies.

A front door over :func:`invites.audit.audit_invite_codes`: it parses, calls
the audit, and renders the findings (their wording is in
:mod:`invites.audit.findings`). Found problems are the audit's result, not an
error: the command ends with a summary line and exit status 1
(``SystemExit``), not a ``CommandError``. Warnings (legacy-format codes) are
listed and never change the exit status. See :data:`EXIT_STATUSES` and
docs/backfill.md.

While the table is scanned, a progress bar (tqdm) is drawn on stderr when
stderr is a terminal, and never otherwise (logs and pipes get the log lines
only): items scanned of DescribeTable's ``ItemCount``, marked as an estimate,
with rate and time left. The log lines go around it (tqdm's
``logging_redirect_tqdm``).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser, DjangoHelpFormatter
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from invites.audit import DEFAULT_GRACE_SECONDS, AuditReport, FindingKind, audit_invite_codes
from invites.management.commands.backfill_invite_codes import (
    PROBE_CONNECT_TIMEOUT,
    RULE,
    RUN_MAX_ATTEMPTS,
    RUN_RETRY_MODE,
    command_logger,
)
from spaces.dynamodb import DynamoUnavailable, configure, current_binding, ensure_table_reachable

# Listed one by one at -v 1 up to this many per kind; all of them at -v 2.
LISTED_PER_KIND = 20
REPAIR_HELP = (
    "Fix what is found. "
    + " ".join(f"{kind.label}: {kind.repair}." for kind in FindingKind if not kind.warning)
    + " Warnings are listed and left alone."
)
EXIT_STATUSES = """exit status:
  0  no problem found, or every problem found was repaired; warnings (legacy-format codes) are
     listed but never fail the audit
  1  problems found (without --repair), or a repair failed: the last line says which; found
     problems are the audit's result, not an error
  2  unusable arguments, or DynamoDB or the table cannot be reached: one line"""
REPAIR_HINT = "run audit_invite_codes --repair to fix them"
ESTIMATED_BAR = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/~{total_fmt} items (total estimated) [{elapsed}<{remaining}, {rate_fmt}]"
)
UNKNOWN_TOTAL_BAR = "{desc}: {n_fmt} items [{elapsed}, {rate_fmt}]"


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of options, and the exit statuses as written."""


class Command(BaseCommand):
    help = "Report invite-code inconsistencies in the DynamoDB table; --repair fixes them."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("epilog", EXIT_STATUSES)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--repair", action="store_true", help=REPAIR_HELP)
        parser.add_argument(
            "--grace-seconds",
            type=float,
            default=DEFAULT_GRACE_SECONDS,
            help="Treat claims and mappings younger than this as operations in flight, not problems "
            f"(default {DEFAULT_GRACE_SECONDS:.0f}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (math.isfinite(options["grace_seconds"]) and options["grace_seconds"] >= 0):
            raise CommandError("--grace-seconds must be a number of seconds, 0 or more", returncode=2)
        log, handler = command_logger("invites.commands.audit", self.stdout)
        try:
            estimate = self._connect()
            log.info("Auditing invite codes in DynamoDB table '%s'...", current_binding().table_name)
            with progress_bar(log, estimate) as bar:
                report = audit_invite_codes(
                    repair=options["repair"], grace_seconds=options["grace_seconds"], progress=bar
                )
            _print_findings(report, log, options["verbosity"])
            if options["repair"]:
                _print_repair(report, log)
            status = _print_ending(report, log, repaired=options["repair"])
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from None
        finally:
            handler.flush()
            log.removeHandler(handler)
        if status:
            raise SystemExit(status)  # a result, not an error: no "CommandError:" line

    def _connect(self) -> int | None:
        """Adaptive retries (before the first call, if it is), then the probe; the table's item count."""
        configure(retry_mode=RUN_RETRY_MODE, max_attempts=RUN_MAX_ATTEMPTS)
        return ensure_table_reachable(connect_timeout=min(current_binding().connect_timeout, PROBE_CONNECT_TIMEOUT))


class ScanBar:
    """The scan's progress as a tqdm bar: items scanned, of DescribeTable's item count (an estimate)."""

    def __init__(self, *, estimate: int | None, stream: TextIO) -> None:
        self.bar = tqdm(
            desc="Items scanned",
            total=estimate,
            unit=" items",
            unit_scale=True,
            bar_format=ESTIMATED_BAR if estimate else UNKNOWN_TOTAL_BAR,
            file=stream,
            dynamic_ncols=True,
        )

    def advance(self, items: int) -> None:
        if self.bar.total is not None and self.bar.n + items > self.bar.total:
            self.bar.total = self.bar.n + items  # the estimate was low: never past 100%
        self.bar.update(items)

    def finish(self) -> None:
        self.bar.close()


@contextmanager
def progress_bar(log: logging.Logger, estimate: int | None) -> Iterator[ScanBar | None]:
    """A :class:`ScanBar` on stderr while the block runs, if stderr is a terminal; else None."""
    stream = sys.stderr
    if not stream.isatty():
        yield None
        return
    with ExitStack() as stack:
        bar = ScanBar(estimate=estimate or None, stream=stream)
        stack.callback(bar.finish)
        # The command's own lines only. The engine's lines (the root logger's handler) come during the
        # repair, after the bar is closed; tqdm's redirect would also drop that handler's filters.
        stack.enter_context(logging_redirect_tqdm(loggers=[log]))
        yield bar


def _print_findings(report: AuditReport, log: logging.Logger, verbosity: int) -> None:
    log.info("Scanned %d items: %d spaces", report.total_items, report.total_spaces)
    for kind in FindingKind:
        found = report.of(kind)
        log.info("%s: %d", kind.label, len(found))
        shown = found if verbosity >= 2 else found[:LISTED_PER_KIND] if verbosity == 1 else []
        for finding in shown:
            log.info("  - %s", finding.describe())
        if len(found) > len(shown) and verbosity >= 1:
            log.info("  ... and %d more (-v 2 lists all)", len(found) - len(shown))
    log.info(RULE)
    if report.clean:
        log.info("No problems found")
    else:
        log.info("Problems found: %d", report.problem_count)


def _print_repair(report: AuditReport, log: logging.Logger) -> None:
    for kind in FindingKind:
        if report.repaired.get(kind):
            log.info("Repaired - %s: %d", kind.label, report.repaired[kind])
    for failure in report.repair_failures:
        log.error("Repair failed - %s", failure.describe())
    if report.marked_legacy_codes_recorded:
        log.info("Every existing invite code is now recorded")
    if not report.clean and not report.repair_failures:
        log.info("*** REPAIR COMPLETE ***")


def _print_ending(report: AuditReport, log: logging.Logger, *, repaired: bool) -> int:
    """The summary's last lines; returns the exit status (see :data:`EXIT_STATUSES`)."""
    for kind in FindingKind:
        count = len(report.of(kind)) if kind.warning else 0
        if count:
            log.warning("%s: %d, not counted as problems; %s", kind.label, count, kind.repair)
    if report.repair_failures:
        failed = len(report.repair_failures)
        log.error("%d repair%s failed (see above); run audit_invite_codes --repair again", failed, _s(failed))
        return 1
    if not report.clean and not repaired:
        log.warning("%d problem%s found; %s", report.problem_count, _s(report.problem_count), REPAIR_HINT)
        return 1
    return 0


def _s(count: int) -> str:
    return "" if count == 1 else "s"
