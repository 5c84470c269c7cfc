"""``manage.py audit_invite_codes [--repair]``: list the audit's findings by kind, with a summary and an exit status."""

import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from invites.audit import DEFAULT_GRACE_SECONDS, KINDS, AuditReport, audit_invite_codes
from invites.management.output import HelpFormatter, command_logger
from spaces.dynamodb import ensure_table_reachable
from spaces.exceptions import DynamoUnavailable
from spaces.models import Space

REPAIR_HELP = (
    "Fix what is found, problems and warnings alike: "
    + " ".join(f"{info.label}: {info.repair}." for info in KINDS.values())
    + " Without a failed repair, it then marks the table's legacy codes as recorded (new codes then skip the "
    "look-up of legacy mappings): the one path besides table creation that sets this flag on an inherited table."
)
EXIT_STATUSES = """exit status:
  0  no problem found, or every finding was repaired; warnings (harmless findings) are listed
     but never fail the audit
  1  problems (harmful findings) found without --repair, or a repair failed: the last line says which
  2  unusable arguments, or DynamoDB or the table cannot be reached: one line, before any write"""
BAR = "{l_bar}{bar}| {n_fmt}/~{total_fmt} items (total estimated) [{elapsed}<{remaining}, {rate_fmt}]"
GRACE_HELP = "Leave out changes younger than this (default %(default).0f): another writer may be finishing them."


class Command(BaseCommand):
    help = "Report invite-code inconsistencies in the DynamoDB table; --repair fixes them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.epilog, parser.formatter_class = EXIT_STATUSES, HelpFormatter
        parser.add_argument("--repair", action="store_true", help=REPAIR_HELP)
        parser.add_argument("--grace-seconds", type=float, default=DEFAULT_GRACE_SECONDS, help=GRACE_HELP)

    def handle(self, *args: Any, repair: bool, grace_seconds: float, verbosity: int, **options: Any) -> None:
        if not 0 <= grace_seconds < float("inf"):  # and not NaN
            raise CommandError("--grace-seconds must be a number of seconds, 0 or more", returncode=2)
        log = command_logger("invites.commands.audit", self.stdout)
        try:
            estimate = ensure_table_reachable()  # DescribeTable's item count, if known: the bar's total
            log.info("Auditing invite codes in DynamoDB table '%s'...", Space.Meta.table_name)
            with tqdm(desc="Items scanned", total=estimate or None, unit=" items", unit_scale=True, file=sys.stderr,
                      bar_format=BAR if estimate else None, disable=not sys.stderr.isatty()) as bar:  # fmt: skip

                def advance(items: int, last: bool) -> None:
                    bar.total = bar.total and max(bar.total, bar.n + items)  # a low estimate: never past 100%
                    bar.update(items)
                    if last:
                        bar.close()  # before the repair's lines

                report = audit_invite_codes(repair=repair, grace_seconds=grace_seconds, progress=advance)
            status = _summarise(report, log, verbosity, repair)
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from None
        finally:
            log.handlers = []
        if status:
            raise SystemExit(status)  # found problems are a result, not an error: no "CommandError:" line


def _summarise(report: AuditReport, log: logging.Logger, verbosity: int, repair: bool) -> int:
    """The findings, the repair and the summary; returns the exit status."""
    log.info("Scanned %d items: %d spaces", report.total_items, report.total_spaces)
    shown = None if verbosity >= 2 else 20 * verbosity  # findings listed per kind
    for kind, info in KINDS.items():
        found = report.of(kind)
        log.info("%s%s: %d", info.label, "" if info.harmful else " (warning)", len(found))
        for finding in found[:shown]:
            log.info("  - %s", finding.describe())
        if shown and len(found) > shown:
            log.info("  ... and %d more (-v 2 lists all)", len(found) - shown)
    log.info("=" * 60)
    log.info(f"Problems found: {len(report.problems)}" if report.problems else "No problems found")
    for kind, count in report.repaired.items():
        log.info("Repaired - %s: %d", KINDS[kind].label, count)
    for text in report.failure_texts():
        log.error("Repair failed - %s", text)
    if report.marked_legacy_codes_recorded:
        log.info("Every existing invite code is now recorded")
    if report.repaired and not report.repair_failures:
        log.info("*** REPAIR COMPLETE ***")
    for kind, info in KINDS.items():
        if not info.harmful and (left := len(report.of(kind)) - report.repaired[kind]) > 0:
            log.warning("%s: %d, not counted as problems; --repair %s", info.label, left, info.repair)
    failed, problems = len(report.repair_failures), 0 if repair else len(report.problems)
    if failed:
        log.error("%d repair%s failed (see above); run audit_invite_codes --repair again", failed, "s" * (failed != 1))
    elif problems:
        log.warning("%d problem%s found; run audit_invite_codes --repair to fix them", problems, "s" * (problems != 1))
    return 1 if failed or problems else 0
