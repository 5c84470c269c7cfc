"""``manage.py audit_invite_codes [--repair]``: find and fix invite-code inconsistencies.

A front door over :func:`invites.audit.audit_invite_codes`: it parses, calls
the audit, and renders the findings (their wording is in
:mod:`invites.audit.findings`). Exit 0 when the table is consistent (or every
problem was repaired), 1 when problems remain, 2 when DynamoDB or the table
cannot be reached. See docs/backfill.md.
"""

from __future__ import annotations

import logging
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

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
REPAIR_HELP = "Fix what is found. " + " ".join(f"{kind.label}: {kind.repair}." for kind in FindingKind)


class Command(BaseCommand):
    help = "Report invite-code inconsistencies in the DynamoDB table; --repair fixes them."

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
        log, handler = command_logger("invites.commands.audit", self.stdout)
        if options["grace_seconds"] < 0:
            raise CommandError("--grace-seconds cannot be negative", returncode=2)
        try:
            self._connect()
            log.info("Auditing invite codes in DynamoDB table '%s'...", current_binding().table_name)
            report = audit_invite_codes(repair=options["repair"], grace_seconds=options["grace_seconds"])
            _print_findings(report, log, options["verbosity"])
            if options["repair"]:
                _print_repair(report, log)
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from None
        finally:
            log.removeHandler(handler)
        if report.repair_failures:
            raise CommandError(f"{len(report.repair_failures)} repair(s) failed; see above", returncode=1)
        if not report.clean and not options["repair"]:
            raise CommandError(f"{report.problem_count} problem(s) found; run with --repair to fix them", returncode=1)

    def _connect(self) -> None:
        configure(retry_mode=RUN_RETRY_MODE, max_attempts=RUN_MAX_ATTEMPTS)  # before the first call, if it is
        ensure_table_reachable(connect_timeout=min(current_binding().connect_timeout, PROBE_CONNECT_TIMEOUT))


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
