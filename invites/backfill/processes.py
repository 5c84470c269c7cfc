"""``--processes P``: P worker processes on one machine, each with its own DynamoDB connection.

One backfill process is bound by one core (the client's CPU per space, see
docs/backfill.md); P processes use P cores. Process ``p`` scans segment
``first_segment + p`` of ``total_segments`` (a machine of a split run has
``first_segment = machine x P`` and ``total_segments = machines x P``). They
are started with multiprocessing's *spawn* method: a fresh interpreter that
inherits nothing of the parent's connection, pool or threads, and talks to the
parent's table with the parent's connection settings. Their outcomes and pages
come back over a pipe per process, in small batches, so the parent's per-space lines,
progress bar and report file see every space, as with one process.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from invites import services as engine
from invites.backfill.exceptions import BackfillConfigError, BackfillWorkerDied
from invites.backfill.job import MODE_BACKFILL
from invites.backfill.report import BackfillReport, PageRead, SpaceOutcome
from spaces.dynamodb import DynamoUnavailable, current_binding

# A child sends what it heard at least this often, or after this many outcomes.
SEND_SECONDS = 0.2
SEND_OUTCOMES = 256


@dataclass(frozen=True)
class ProcessPlan:
    processes: int
    first_segment: int
    total_segments: int

    @property
    def whole_table(self) -> bool:
        """The processes together scan every segment (one machine, not a slice of a split run)."""
        return self.first_segment == 0 and self.total_segments == self.processes


def backfill_in_processes(
    *,
    plan: ProcessPlan,
    options: dict[str, Any],
    on_space: Callable[[SpaceOutcome], None] | None = None,
    on_page: Callable[[PageRead], None] | None = None,
    quiet_engine: bool = True,
) -> BackfillReport:
    """Run :func:`backfill_missing_codes` with ``options`` in ``plan.processes`` processes; their reports merged.

    ``max_writes_per_second`` is shared out between the processes. Raises what a
    process raised (:class:`DynamoUnavailable`, :class:`BackfillConfigError`) or
    :class:`BackfillWorkerDied` once every process has ended.
    """
    started = time.monotonic()
    record_legacy = not engine.legacy_codes_recorded()
    options = dict(options)
    if options.get("max_writes_per_second"):
        options["max_writes_per_second"] = options["max_writes_per_second"] / plan.processes
    context = multiprocessing.get_context("spawn")
    binding = dataclasses.asdict(current_binding())
    children, channels = [], []
    for index in range(plan.processes):
        child_options = {**options, "segment": plan.first_segment + index, "total_segments": plan.total_segments}
        # One pipe per child, written by that child only: a child killed mid-message leaves no lock
        # held that the others would wait on, and its pipe simply ends.
        reader, writer = context.Pipe(duplex=False)
        child = context.Process(
            target=_child_main,
            args=(index, child_options, binding, quiet_engine, writer),
            name=f"backfill-process-{index}",
            daemon=True,  # ended with the parent, whatever ends it
        )
        child.start()
        writer.close()  # the child's end: the parent reads end of file once the child is gone
        children.append(child)
        channels.append(reader)
    results = _collect(channels, on_space, on_page)
    for child in children:
        child.join()
    report = _merged(plan, options, children, results)
    if plan.whole_table and _recorded_every_code(options, report, record_legacy):
        engine.mark_legacy_codes_recorded(by=str(options.get("source", "backfill")))
        report.marked_legacy_codes_recorded = True
    report.seconds = time.monotonic() - started
    return report


def _recorded_every_code(options: dict[str, Any], report: BackfillReport, record_legacy: bool) -> bool:
    """Without a run in DynamoDB, the parent knows when the processes together recorded every legacy code."""
    return (
        record_legacy
        and options.get("run_name") is None
        and options.get("mode", MODE_BACKFILL) == MODE_BACKFILL
        and not options.get("dry_run")
        and report.complete
        and not report.failed
    )


def _collect(
    channels: list[Connection],
    on_space: Callable[[SpaceOutcome], None] | None,
    on_page: Callable[[PageRead], None] | None,
) -> dict[int, tuple[str, Any]]:
    """Relay what the children send until every pipe has ended; their last word (a report or an error) by index."""
    results: dict[int, tuple[str, Any]] = {}
    open_channels = dict(enumerate(channels))
    while open_channels:
        for ready in wait(list(open_channels.values()), timeout=1.0):
            index = next(i for i, channel in open_channels.items() if channel is ready)
            try:
                kind, payload = ready.recv()
            except (EOFError, OSError):  # the child has ended (or was killed mid-message)
                ready.close()
                del open_channels[index]
                continue
            if kind == "outcomes" and on_space is not None:
                for outcome in payload:
                    on_space(outcome)
            elif kind == "pages" and on_page is not None:
                for page in payload:
                    on_page(page)
            elif kind in ("report", "error"):
                results[index] = (kind, payload)
    return results


def _merged(
    plan: ProcessPlan, options: dict[str, Any], children: list[Any], results: dict[int, tuple[str, Any]]
) -> BackfillReport:
    report = BackfillReport(
        dry_run=bool(options.get("dry_run")),
        mode=options.get("mode", MODE_BACKFILL),
        run_name=options.get("run_name"),
    )
    errors: list[BaseException] = []
    complete = True
    for index, child in enumerate(children):
        kind, payload = results.get(index, ("died", None))
        if kind == "report":
            report.merge(payload)
            complete = complete and payload.complete
        elif kind == "error":
            errors.append(_error_from(payload))
        else:
            segment = plan.first_segment + index
            how = (
                f"was killed by signal {-child.exitcode}" if (child.exitcode or 0) < 0 else f"exited ({child.exitcode})"
            )
            errors.append(
                BackfillWorkerDied(
                    f"worker process {index} (scan segment {segment} of {plan.total_segments}) {how} before it "
                    "finished; run the same command again to continue"
                )
            )
    if errors:
        raise errors[0]
    report.complete = complete
    return report


def _error_from(payload: tuple[str, str]) -> BaseException:
    kind, message = payload
    if kind == "unavailable":
        return DynamoUnavailable(message)
    if kind == "config":
        return BackfillConfigError(message)
    return BackfillWorkerDied(f"a worker process failed: {message}")


# --- in the child ---------------------------------------------------------------------------------


def _child_main(
    index: int, options: dict[str, Any], binding: dict[str, Any], quiet_engine: bool, channel: Connection
) -> None:
    """A worker process: its own Django, its own connection to the parent's table, one scan segment."""
    import django

    django.setup()
    from invites.backfill.run import backfill_missing_codes
    from spaces.dynamodb import configure

    configure(**binding)
    if quiet_engine:
        logging.getLogger("invites").setLevel(logging.WARNING)
    sender = _Sender(channel)
    try:
        report = backfill_missing_codes(**options, on_space=sender.outcome, on_page=sender.page)
    except DynamoUnavailable as exc:
        sender.finish("error", ("unavailable", str(exc)))
    except BackfillConfigError as exc:
        sender.finish("error", ("config", str(exc)))
    except BaseException as exc:
        sender.finish("error", ("crash", f"{type(exc).__name__}: {exc}"))
        raise
    else:
        sender.finish("report", report)


class _Sender:
    """Batches a child's outcomes and pages for the parent: one message per batch, not per space."""

    def __init__(self, channel: Connection) -> None:
        self.channel = channel
        self._lock = threading.Lock()
        self._outcomes: list[SpaceOutcome] = []
        self._pages: list[PageRead] = []
        self._sent_at = time.monotonic()

    def outcome(self, outcome: SpaceOutcome) -> None:
        with self._lock:
            self._outcomes.append(outcome)
            self._send_if_due()

    def page(self, page: PageRead) -> None:
        with self._lock:
            self._pages.append(page)
            self._send_if_due()

    def finish(self, kind: str, payload: Any) -> None:
        with self._lock:
            self._send()
            self.channel.send((kind, payload))
            self.channel.close()

    def _send_if_due(self) -> None:
        if len(self._outcomes) >= SEND_OUTCOMES or time.monotonic() - self._sent_at >= SEND_SECONDS:
            self._send()

    def _send(self) -> None:
        if self._outcomes:
            self.channel.send(("outcomes", self._outcomes))
            self._outcomes = []
        if self._pages:
            self.channel.send(("pages", self._pages))
            self._pages = []
        self._sent_at = time.monotonic()
