"""``manage.py backfill_invite_codes``: options, the guide's log lines, the report, exit statuses (docs/backfill.md)."""

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import IO, Any, NoReturn

from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from pynamodb.exceptions import PynamoDBException
from tqdm import tqdm

from invites.backfill import BackfillSummary, backfill_missing_codes
from invites.management.output import HelpFormatter, command_logger
from invites.services import SpaceOutcome, Status
from spaces.dynamodb import MAX_TOTAL_SEGMENTS, ensure_table_reachable, short_reason
from spaces.exceptions import DynamoUnavailable
from spaces.ids import is_valid_space_id

RULE = "=" * 60
MAX_WORKERS = 128  # a thread and a connection each
PER_SPACE_LINES = 1000  # at -v 1, per-space lines for this many spaces, then progress only
PASSED_ON = ["dry_run", "limit", "space_ids", "workers", "segment", "total_segments", "replace_legacy_codes",
             "max_writes_per_second"]  # fmt: skip  # the options that are the service's arguments, by the same names
REPORTED = ("space_id", "status", "old_code", "new_code", "error", "name")  # of a SpaceOutcome, in the report
EPILOG = """A rerun is the resume: only spaces still without a code are written, so after any stop
(kill, crash, --limit) run the same command again; a rescan costs reads only.

exit status:
  0  nothing failed
  1  some spaces failed: each is logged with its error and the run went on
  2  unusable arguments or environment, a report file that cannot be written, or DynamoDB or the
     table cannot be reached: one line, nothing written"""
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} spaces [{elapsed}<{remaining}, {rate_fmt}]"
ESTIMATED_BAR = BAR.replace("/{total_fmt} spaces", "/~{total_fmt} spaces (total estimated)")
TEXT: dict[bool, dict[str, str]] = {  # --replace-legacy-codes -> what the log says (per status, and the rest)
    False: {
        "start": "Starting invite code backfill process",
        "found": "Space '{name}' (ID: {space_id}) is missing invite code",
        "which": "without invite codes",
        "all done": "All spaces already have invite codes!",
        "skipped": "already had a code",
        Status.WOULD_UPDATE: "[DRY RUN] Would add invite code to space '{name}' (ID: {space_id})",
        Status.UPDATED: "✓ Added invite code '{new_code}' to space '{name}' (ID: {space_id})",
        Status.SKIPPED: "Space '{name}' (ID: {space_id}) received an invite code meanwhile; skipped",
        Status.FAILED: "Failed to add invite code to space '{name}' (ID: {space_id}): {error}",
    },
    True: {
        "start": "Starting legacy invite code replacement",
        "found": "Space '{name}' (ID: {space_id}) has legacy-format invite code '{old_code}'",
        "which": "with legacy-format invite codes",
        "all done": "All invite codes are already in the current format!",
        "skipped": "code changed since the scan",
        Status.WOULD_UPDATE: "[DRY RUN] Would replace the invite code of space '{name}' (ID: {space_id})",
        Status.UPDATED: "✓ Replaced invite code '{old_code}' of space '{name}' (ID: {space_id}) with '{new_code}'",
        Status.SKIPPED: "Space '{name}' (ID: {space_id}) changed its invite code since the scan; skipped",
        Status.FAILED: "Failed to replace the invite code of space '{name}' (ID: {space_id}): {error}",
    },
}


def checked(convert: Callable[[str], Any], accept: Callable[[Any], bool], name: str) -> Callable[[str], Any]:
    """An argparse ``type`` (also for the environment's values): ``convert``, then refuse what ``accept`` does not."""

    def parse(text: str) -> Any:
        value = convert(text)
        if not accept(value):
            raise ValueError(text)
        return value

    parse.__name__ = name  # what the error message calls it
    return parse


def number(convert: Callable[[str], float], low: float, high: float, name: str) -> Callable[[str], Any]:
    return checked(convert, lambda value: low <= value <= high, name)  # NaN compares false: refused too


index_type = number(int, 0, MAX_TOTAL_SEGMENTS - 1, "segment index")
total_type = number(int, 1, MAX_TOTAL_SEGMENTS, f"whole number from 1 to {MAX_TOTAL_SEGMENTS:,}")
OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--dry-run", {"action": "store_true", "help": "Report what would change; write nothing."}),
    ("--workers", {"type": number(int, 1, MAX_WORKERS, f"whole number from 1 to {MAX_WORKERS}"),
                   "help": "Threads writing codes (default: BACKFILL_WORKERS)."}),
    ("--segment", {"type": index_type, "help": "This worker's segment (0-based) of --total-segments (default: "
                   "JOB_COMPLETION_INDEX of a Kubernetes Indexed Job or AWS_BATCH_JOB_ARRAY_INDEX)."}),
    ("--total-segments", {"type": total_type, "help": "Workers sharing the scan (default: BACKFILL_TOTAL_SEGMENTS)."}),
    ("--space-id", {"action": "append", "dest": "space_ids", "type": checked(str, is_valid_space_id, "space_id"),
                    "metavar": "ID", "help": "Only this space (repeatable); no scan."}),
    ("--limit", {"type": number(int, 1, sys.float_info.max, "positive whole number"),
                 "help": "Stop after this many spaces."}),
    ("--report", {"metavar": "FILE", "help": "Write a JSON line per change and failure, then a summary line."}),
    ("--replace-legacy-codes", {"action": "store_true", "help": "Give each space whose code is not in the current "
                                "format a new one instead (a code changed since the scan is left)."}),
    ("--max-writes-per-second", {"type": number(float, 1e-9, sys.float_info.max, "positive finite number"),
                                 "help": "Cap this run's DynamoDB item writes per second (default: no cap)."}),
]  # fmt: skip


class Command(BaseCommand):
    help = "Give every space without an invite code one (--replace-legacy-codes: new codes for legacy-format ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.epilog, parser.formatter_class = EPILOG, HelpFormatter

        def error(message: str) -> NoReturn:  # one line and status 2, not argparse's usage block
            if parser.called_from_command_line:
                parser.exit(2, f"CommandError: {message}\n")
            raise CommandError(message, returncode=2)

        parser.error = error  # type: ignore[method-assign]  # argparse has no hook for its error output
        for flag, spec in OPTIONS:
            parser.add_argument(flag, **spec)

    def handle(self, *args: Any, **options: Any) -> None:
        options["segment"], options["total_segments"] = _split(options)  # every check before the first read
        log = command_logger("invites.commands.backfill", self.stdout)
        engine_log, engine_level = logging.getLogger("invites"), logging.getLogger("invites").level
        if options["verbosity"] < 3:
            engine_log.setLevel(logging.WARNING)  # its audit line per change would double ours
        path, report = options["report"], None
        try:  # the report is opened (line-buffered) before the first read: an unwritable path writes nothing
            report = None if path is None else open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115
            summary = _run(options, log, report, ensure_table_reachable())  # one line and exit 2 if unreachable
        except (DynamoUnavailable, PynamoDBException, BotoCoreError, OSError) as exc:
            refused = f"DynamoDB refused the backfill: {short_reason(exc)}"
            error = str(exc) if isinstance(exc, DynamoUnavailable) else refused
            if isinstance(exc, OSError):
                error = f"cannot write the report file {path}: {exc.strerror or exc}"
            with contextlib.suppress(OSError):  # the error being raised says more
                _write(report, {"summary": {"error": error}})
            raise CommandError(error, returncode=2) from None
        finally:
            engine_log.setLevel(engine_level)
            if report is not None:
                report.close()
        if summary.failed:
            raise CommandError(f"{summary.failed} space(s) failed; see the summary above", returncode=1)


def _split(options: dict[str, Any]) -> tuple[int | None, int | None]:
    """This worker's segment and the number of segments, from the options or the environment."""
    if not 1 <= settings.BACKFILL_WORKERS <= MAX_WORKERS:
        raise CommandError(f"BACKFILL_WORKERS must be a whole number from 1 to {MAX_WORKERS}", returncode=2)
    index_variables = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
    index, index_from = _given(options["segment"], "--segment", index_variables, index_type)
    total, total_from = _given(options["total_segments"], "--total-segments", ("BACKFILL_TOTAL_SEGMENTS",), total_type)
    refusal = None
    if total is None and index is not None:
        refusal = f"segment {index} ({index_from}) needs --total-segments N or BACKFILL_TOTAL_SEGMENTS"
    elif total is not None and total > 1 and index is None:
        refusal = f"the scan is split into {total} segments ({total_from}) but this worker's segment is unknown: "
        refusal += "pass --segment I, or run it as a Kubernetes Indexed Job or an AWS Batch array job"
    elif total is not None and index is not None and index >= total:
        refusal = f"segment {index} ({index_from}) must be from 0 to {total - 1}"
    elif options["space_ids"] and total is not None:
        refusal = "--space-id reads those spaces only; it cannot be split into segments"
    if refusal:
        raise CommandError(refusal, returncode=2)
    return (index or 0, total) if total is not None and total > 1 else (None, None)


def _given(value: int | None, option: str, names: tuple[str, ...], parse: Callable[[str], int]) -> tuple[Any, str]:
    """The option's value, else the first of the environment variables ``names`` that is set; and where it came from."""
    for name in names if value is None else ():
        if raw := os.environ.get(name, "").strip():
            try:
                return parse(raw), name
            except ValueError:
                raise CommandError(f"{name} must be a {parse.__name__}, got {raw!r}", returncode=2) from None
    return value, option


def _write(report: IO[str] | None, entry: dict[str, Any]) -> None:
    if report is not None:
        report.write(json.dumps(entry) + "\n")


def _run(options: dict[str, Any], log: logging.Logger, report: IO[str] | None, items: int | None) -> BackfillSummary:
    text, verbosity = TEXT[options["replace_legacy_codes"]], options["verbosity"]
    dry_run = ["DRY RUN MODE - No changes will be made"] if options["dry_run"] else []
    for line in (RULE, text["start"], RULE, *dry_run, "Scanning DynamoDB for all spaces..."):
        log.info(line)
    worked = 0

    def on_outcome(outcome: SpaceOutcome) -> None:
        nonlocal worked
        fields = {name: getattr(outcome, name) for name in REPORTED}
        if outcome.status is not Status.SKIPPED:
            _write(report, {name: value for name, value in fields.items() if value is not None})
        if outcome.status is Status.FAILED:
            log.error(text[outcome.status].format(**fields))
            return
        worked += 1
        if worked == PER_SPACE_LINES + 1 and verbosity == 1:
            log.info("More than %d spaces %s: further per-space lines only with -v 2", PER_SPACE_LINES, text["which"])
        if verbosity >= 2 or (verbosity == 1 and worked <= PER_SPACE_LINES):
            log.info(text["found"].format(**fields))
            log.info(text[outcome.status].format(**fields))

    bar, on_page = _progress_bar(len(set(options["space_ids"] or ())), items, options["total_segments"] or 1)
    passed = {name: options[name] for name in PASSED_ON} | {"source": "backfill_invite_codes"}
    with bar:
        summary = backfill_missing_codes(**passed, on_outcome=on_outcome, on_page=on_page)
    counts = {name: value for name, value in vars(summary).items() if name not in ("failures", "outcomes")}
    _write(report, {"summary": counts | {"seconds": round(summary.seconds, 3)}})
    _log_summary(log, summary, text)
    return summary


def _progress_bar(exact: int, items: int | None, segments: int) -> tuple[tqdm, Callable[[int, int], None]]:
    """tqdm on stderr when it is a terminal, and the ``on_page`` that moves it. Its total is exact for --space-id;
    else DescribeTable's item count (this segment's share) times the share of spaces among the items read so far:
    an estimate, marked "~", unknown until the first page and never lowered."""
    estimate = items // segments if items and not exact else None
    fmt = BAR if exact else ESTIMATED_BAR if estimate else None
    bar = tqdm(desc="Spaces scanned", total=exact or None, unit=" spaces", bar_format=fmt, file=sys.stderr,
               disable=not sys.stderr.isatty())  # fmt: skip
    seen = [0, 0]  # spaces, items read

    def on_page(spaces: int, items_read: int) -> None:
        seen[0], seen[1] = seen[0] + spaces, seen[1] + items_read
        if estimate and seen[1]:
            bar.total = max(bar.total or 0, seen[0], round(estimate * seen[0] / seen[1]))
        bar.update(spaces)

    return bar, on_page


def _log_summary(log: logging.Logger, summary: BackfillSummary, text: dict[str, str]) -> None:
    """What the scan found, then the guide's summary block."""
    nothing = summary.scanned == 0 and not summary.failed
    rows = [
        (nothing, "No spaces found in the database"),
        (not nothing, f"Found {summary.scanned} total spaces"),
        (not nothing, f"Found {summary.missing} spaces {text['which']}"),
        (not nothing and summary.missing == 0 and not summary.failed, text["all done"]),
        (not summary.complete, "Stopped before the end of the table (--limit); run again to continue"),
        *[(True, line) for line in (RULE, "BACKFILL SUMMARY", RULE)],
        (True, f"Total spaces processed: {summary.updated + summary.skipped + summary.failed}"),
        (True, f"Successfully updated: {summary.updated}"),
        (summary.dry_run, f"Would update: {summary.updated}; nothing was written"),
        (summary.skipped, f"Skipped ({text['skipped']}): {summary.skipped}"),
        (True, f"Failed: {summary.failed}"),
        *[(True, f"  - '{failure.name}' (ID: {failure.space_id}): {failure.error}") for failure in summary.failures],
        (True, ""),
        (summary.dry_run, "*** DRY RUN COMPLETE - No changes were made ***"),
        (summary.dry_run, "Run without --dry-run to apply changes"),
        (not summary.dry_run, "*** BACKFILL COMPLETE ***"),
    ]
    for shown, line in rows:
        if shown:
            log.info(line)
