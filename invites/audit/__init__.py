"""The audit: find (and with ``repair``, fix) every invite-code inconsistency in the table.

Shared by ``manage.py audit_invite_codes`` and the admin's audit page, which
both call :func:`audit_invite_codes` and render its :class:`AuditReport`.

* :mod:`invites.audit.findings`: the kinds of problem (label, meaning,
  harm, repair), one typed finding per problem, the report.
* :mod:`invites.audit.scan`: one strongly consistent scan into a compact
  snapshot, and the problems computed from it.
* :mod:`invites.audit.repair`: the fixes.

The engine writes every change as one transaction, so nothing it does is
ever half done: what the audit finds, other writers left (the earlier system,
or a path that writes the guide's layout).
"""

from __future__ import annotations

import time

from invites import services as engine
from invites.audit import scan
from invites.audit.findings import (
    AuditReport,
    CodeWithoutMapping,
    DuplicateCode,
    Finding,
    FindingKind,
    LegacyFormatCode,
    MappingWithMissingSpace,
    MissingClaim,
    PolicyWithoutCode,
    RepairFailure,
    SpaceWithoutCode,
    StaleMapping,
)
from invites.audit.repair import Repair
from invites.audit.scan import DEFAULT_GRACE_SECONDS, ScanProgress

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "AuditReport",
    "CodeWithoutMapping",
    "DuplicateCode",
    "Finding",
    "FindingKind",
    "LegacyFormatCode",
    "MappingWithMissingSpace",
    "MissingClaim",
    "PolicyWithoutCode",
    "RepairFailure",
    "ScanProgress",
    "SpaceWithoutCode",
    "StaleMapping",
    "audit_invite_codes",
]


def audit_invite_codes(
    *, repair: bool, grace_seconds: float = DEFAULT_GRACE_SECONDS, progress: ScanProgress | None = None
) -> AuditReport:
    """Report every invite-code inconsistency (and the warnings); with ``repair``, fix each problem.

    ``progress`` hears of each scan page and of the scan's end (before any repair).
    Raises :class:`DynamoUnavailable` when the table cannot be reached.
    """
    started = time.monotonic()
    try:
        snapshot = scan.take_snapshot(grace_seconds, progress)
    finally:
        if progress is not None:
            progress.finish()
    report = AuditReport(total_items=snapshot.items, total_spaces=len(snapshot.spaces))
    for finding in scan.find_problems(snapshot, grace_seconds):
        report.add(finding)
    if repair:
        Repair(report).run()
        if not report.repair_failures and not engine.legacy_codes_recorded():
            # Every code a space holds now has a claim (recorded just above).
            engine.mark_legacy_codes_recorded(by="audit")
            report.marked_legacy_codes_recorded = True
    report.seconds = time.monotonic() - started
    return report
