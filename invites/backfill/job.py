"""What one backfill is asked to do (:class:`Job`), its bounds and its checks.

A job is checked whole before anything is read or written: unusable
arguments raise :class:`BackfillConfigError`, which the command turns into one
line and exit status 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from invites.backfill.exceptions import BackfillConfigError
from spaces.ids import is_valid_space_id

# Give every space without a code one (the guide's backfill).
MODE_BACKFILL = "backfill"
# Replace codes not in our format (8 characters of our alphabet, upper case) with new ones.
MODE_REPLACE_LEGACY = "replace-legacy-codes"
MODES = (MODE_BACKFILL, MODE_REPLACE_LEGACY)

# Each scan segment of a process is a thread, and so is each worker, with a connection each:
# a run asking for 100,000 of either is a mistake, not a plan. Split wider with processes and machines.
MAX_SEGMENTS = 64
MAX_WORKERS = 128
MAX_PROCESSES = 64
# DynamoDB's limit on a parallel scan's TotalSegments.
MAX_TOTAL_SEGMENTS = 1_000_000

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Job:
    """One backfill's arguments, with the defaults from settings filled in."""

    dry_run: bool
    limit: int | None
    space_ids: list[str] | None
    segments: int
    workers: int
    segment: int | None
    total_segments: int | None
    checkpoint_path: str | None
    run_name: str | None
    page_size: int
    collect_changes: bool
    actor_id: str | None
    source: str
    mode: str = MODE_BACKFILL

    def validate(self) -> None:
        if self.mode not in MODES:
            raise BackfillConfigError(f"mode must be one of {', '.join(MODES)}")
        if self.limit is not None and self.limit < 1:
            raise BackfillConfigError("limit must be at least 1")
        _check_range("segments (--segments, BACKFILL_SEGMENTS)", self.segments, 1, MAX_SEGMENTS)
        _check_range("workers (--workers, BACKFILL_WORKERS)", self.workers, 1, MAX_WORKERS)
        if self.page_size < 1:
            raise BackfillConfigError(f"the page size (BACKFILL_PAGE_SIZE) must be at least 1, got {self.page_size}")
        self._validate_split()
        self._validate_progress()
        if self.space_ids is not None:
            bad = [space_id for space_id in self.space_ids if not is_valid_space_id(space_id)]
            if bad:
                raise BackfillConfigError(f"not a space id: {bad[0]!r}")
            if self.checkpoint_path or self.run_name or self.segment is not None:
                raise BackfillConfigError("space ids cannot be combined with a checkpoint, a run or a segment")

    def _validate_split(self) -> None:
        if (self.segment is None) != (self.total_segments is None):
            raise BackfillConfigError("segment and total segments go together")
        if self.total_segments is not None and self.segment is not None:
            _check_range("total segments", self.total_segments, 1, MAX_TOTAL_SEGMENTS)
            if not 0 <= self.segment < self.total_segments:
                raise BackfillConfigError(f"segment must be between 0 and {self.total_segments - 1}")

    def _validate_progress(self) -> None:
        if self.dry_run and self.checkpoint_path:
            raise BackfillConfigError("a dry run does not write a checkpoint; drop the checkpoint file")
        if self.dry_run and self.run_name:
            raise BackfillConfigError("a dry run writes nothing, not even a run's progress; drop --run")
        if self.run_name is not None:
            if self.checkpoint_path:
                raise BackfillConfigError("a run keeps its progress in DynamoDB; drop the checkpoint file")
            check_run_name(self.run_name)

    def plan(self) -> tuple[list[int], int]:
        """The segments this process scans, and how many segments the table is split into."""
        if self.segment is not None and self.total_segments is not None:
            return [self.segment], self.total_segments
        return list(range(self.segments)), self.segments


def check_run_name(name: str) -> None:
    if RUN_NAME.fullmatch(name) is None:
        raise BackfillConfigError(
            f"run name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise BackfillConfigError(f"{what} must be between {low} and {high:,}, got {value:,}")
