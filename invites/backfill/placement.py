"""Where one worker stands in a backfill split over machines: its segment, from the flags or the scheduler.

A Kubernetes Indexed Job gives each pod ``JOB_COMPLETION_INDEX``; an AWS Batch
array job gives each child ``AWS_BATCH_JOB_ARRAY_INDEX``. Neither tells the
pod how many there are, so the number of segments comes from
``--total-segments`` or ``BACKFILL_TOTAL_SEGMENTS`` (set beside the Job's
``completions`` or the array's size). With ``--processes P``, machine ``m`` of
``M`` runs the scan segments ``m x P`` to ``m x P + P - 1`` of ``M x P``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.job import MAX_PROCESSES, MAX_TOTAL_SEGMENTS

SCHEDULER_INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX")
TOTAL_SEGMENTS_VARIABLE = "BACKFILL_TOTAL_SEGMENTS"


@dataclass(frozen=True)
class Placement:
    """Machine ``machine`` of ``machines`` (``split`` False: one machine, no split asked for), ``processes`` each."""

    split: bool
    machine: int
    machines: int
    processes: int

    @property
    def total_segments(self) -> int:
        return self.machines * self.processes

    @property
    def first_segment(self) -> int:
        return self.machine * self.processes


def placement_from(
    *, segment: int | None, total_segments: int | None, processes: int, default_total: int, environ: Mapping[str, str]
) -> Placement:
    """The worker's place from ``--segment``/``--total-segments``, else the scheduler's variables and the setting.

    Raises :class:`BackfillConfigError` with what to set when they do not add up.
    """
    if not 1 <= processes <= MAX_PROCESSES:
        raise BackfillConfigError(f"--processes must be between 1 and {MAX_PROCESSES}, got {processes}")
    index, index_source = _machine_index(segment, environ)
    total, total_source = (total_segments, "--total-segments") if total_segments is not None else (None, "")
    if total is None and default_total > 0:
        total, total_source = default_total, TOTAL_SEGMENTS_VARIABLE
    if total is None:
        if index is not None:
            raise BackfillConfigError(
                f"segment {index} ({index_source}) needs the number of segments: "
                f"pass --total-segments N or set {TOTAL_SEGMENTS_VARIABLE}"
            )
        return Placement(split=False, machine=0, machines=1, processes=processes)
    if not 1 <= total * processes <= MAX_TOTAL_SEGMENTS:
        raise BackfillConfigError(
            f"{total_source} x --processes must be between 1 and {MAX_TOTAL_SEGMENTS:,} (DynamoDB's limit on a "
            f"parallel scan), got {total:,} x {processes}"
        )
    if index is None:
        if total > 1:
            raise BackfillConfigError(
                f"the backfill is split into {total} segments ({total_source}) but this worker's segment is "
                "unknown: pass --segment I, or run it as a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) "
                "or an AWS Batch array job (AWS_BATCH_JOB_ARRAY_INDEX)"
            )
        index, index_source = 0, "the only one"
    if not 0 <= index < total:
        raise BackfillConfigError(f"segment {index} ({index_source}) must be between 0 and {total - 1}")
    return Placement(split=True, machine=index, machines=total, processes=processes)


def _machine_index(segment: int | None, environ: Mapping[str, str]) -> tuple[int | None, str]:
    if segment is not None:
        return segment, "--segment"
    for name in SCHEDULER_INDEX_VARIABLES:
        raw = environ.get(name, "").strip()
        if raw:
            if not raw.isdigit():
                raise BackfillConfigError(f"{name} must be a whole number, got {raw!r}")
            return int(raw), name
    return None, ""
