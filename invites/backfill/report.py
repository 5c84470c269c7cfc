"""What a backfill did: one :class:`SpaceOutcome` per space, tallied into a :class:`BackfillReport`.

A :class:`PageTally` counts the outcomes of one scan page, so a run's progress
(a checkpoint, or a run's state in DynamoDB) records each finished page's
counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

OutcomeStatus = Literal["updated", "would_update", "skipped_already_had_code", "failed", "duplicate_code"]


@dataclass(frozen=True)
class SpaceOutcome:
    """What happened to one space; passed to ``on_space`` as it happens."""

    space_id: str
    name: str
    status: OutcomeStatus
    new_code: str | None = None
    # The error for "failed"; for "duplicate_code", the id of the other holder.
    error: str | None = None
    # The code replaced (``--replace-legacy-codes``), as the scan read it.
    old_code: str | None = None

    @property
    def is_change(self) -> bool:
        """The space got a code (in a dry run: would get one)."""
        return self.status in ("updated", "would_update")


@dataclass(frozen=True)
class PageRead:
    """One page the scan read: the spaces on it, and the items DynamoDB read for it (all kinds)."""

    spaces: int
    items: int


@dataclass
class PageTally:
    """The outcomes of one scan page (or one targeted batch), as a run's progress records them."""

    scanned: int = 0
    missing: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    recorded: int = 0
    duplicates: int = 0

    def count(self, outcome: SpaceOutcome) -> None:
        if outcome.is_change:
            self.updated += 1
        elif outcome.status == "skipped_already_had_code":
            self.skipped += 1
        elif outcome.status == "failed":
            self.failed += 1
        elif outcome.status == "duplicate_code":
            self.duplicates += 1

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass
class BackfillReport:
    dry_run: bool
    total_spaces: int = 0  # space items seen by this run
    missing: int = 0  # of those, the ones to work on (and handled, when ``limit`` cut the run short)
    updated: int = 0  # got a code (dry run: would get one)
    skipped_already_had_code: int = 0  # their code changed (or they got one) between the scan and the write
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (space_id, name, error)
    changes: list[tuple[str, str, str | None]] = field(default_factory=list)  # (space_id, name, new_code)
    legacy_codes_recorded: int = 0  # existing codes claimed on a legacy table
    duplicate_codes: list[tuple[str, str, str]] = field(default_factory=list)  # (space_id, code, holder_id)
    marked_legacy_codes_recorded: bool = False
    complete: bool = False  # every targeted space was scanned and handled
    seconds: float = 0.0
    segments_resumed: int = 0  # segments that started from a checkpoint or a run's state
    segments_skipped: int = 0  # segments already finished
    # Segments another worker of the same run advanced first (a scheduler's duplicate): left to it.
    segments_left_to_others: list[tuple[int, str]] = field(default_factory=list)  # (segment, the other worker)
    mode: str = "backfill"
    run_name: str | None = None

    def count(self, outcome: SpaceOutcome, *, keep_change: bool = True) -> None:
        """Add one space's outcome to the tally; ``keep_change=False`` counts a change without listing it.

        Not thread-safe: callers that count from several threads hold a lock.
        """
        if outcome.is_change:
            self.updated += 1
            if keep_change:
                self.changes.append((outcome.space_id, outcome.name, outcome.new_code))
        elif outcome.status == "skipped_already_had_code":
            self.skipped_already_had_code += 1
        elif outcome.status == "failed":
            self.failed.append((outcome.space_id, outcome.name, outcome.error or "unknown error"))
        elif outcome.status == "duplicate_code":
            self.duplicate_codes.append((outcome.space_id, outcome.new_code or "", outcome.error or ""))

    def merge(self, other: BackfillReport) -> None:
        """Add another process's report of the same run to this one (``--processes``)."""
        for name in ("total_spaces", "missing", "updated", "skipped_already_had_code", "legacy_codes_recorded"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("segments_resumed", "segments_skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed.extend(other.failed)
        self.changes.extend(other.changes)
        self.duplicate_codes.extend(other.duplicate_codes)
        self.segments_left_to_others.extend(other.segments_left_to_others)
        self.marked_legacy_codes_recorded = self.marked_legacy_codes_recorded or other.marked_legacy_codes_recorded

    @property
    def remaining_estimate(self) -> int | None:
        """0 when complete; unknown (None) when the run stopped early."""
        return 0 if self.complete else None

    @property
    def processed(self) -> int:
        """Spaces worked on by this run (the guide's 'Total spaces processed')."""
        return self.updated + self.skipped_already_had_code + len(self.failed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "run": self.run_name,
            "dry_run": self.dry_run,
            "total_spaces": self.total_spaces,
            "missing": self.missing,
            "updated": self.updated,
            "skipped_already_had_code": self.skipped_already_had_code,
            "failed_count": len(self.failed),
            "legacy_codes_recorded": self.legacy_codes_recorded,
            "marked_legacy_codes_recorded": self.marked_legacy_codes_recorded,
            "complete": self.complete,
            "remaining_estimate": self.remaining_estimate,
            "seconds": round(self.seconds, 3),
            "segments_resumed": self.segments_resumed,
            "segments_skipped": self.segments_skipped,
            "segments_left_to_others": [{"segment": s, "worker": w} for s, w in self.segments_left_to_others],
            "failures": [{"space_id": s, "name": n, "error": e} for s, n, e in self.failed],
            "duplicate_codes": [{"space_id": s, "code": c, "held_by": h} for s, c, h in self.duplicate_codes],
        }
