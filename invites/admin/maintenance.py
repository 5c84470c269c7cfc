"""The table-wide pages (reading nothing when opened): the backfill and the audit, through the commands' services."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import pluralize

from invites.admin import common
from invites.audit import KINDS, AuditReport, Kind, audit_invite_codes
from invites.backfill import backfill_missing_codes
from invites.models import DynamoSpace
from invites.services import SpaceOutcome, Status

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


def backfill(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Preview (a dry run: GET with ``preview``) and run (POST) the backfill, capped per request."""
    ran, summary, outcomes = request.method == "POST", None, list[SpaceOutcome]()
    if ran or request.GET.get("preview"):
        try:
            summary = backfill_missing_codes(
                dry_run=not ran,
                limit=settings.ADMIN_BACKFILL_PER_REQUEST,
                deadline=time.monotonic() + settings.ADMIN_BACKFILL_SECONDS,
                on_outcome=outcomes.append,  # as they happen: exact even when DynamoDB goes away part way
                actor_id=str(request.user.pk) if ran else None,
                source=common.SOURCE,
            )
        except common.DYNAMO_FAILURES as exc:
            common.report_failure(request, exc)
    if ran:
        common.report_outcomes(request, model_admin, outcomes, "Gave invite codes to", "another writer gave it one")
    if ran and not (summary and summary.complete):
        more = "This request stopped at its cap or its time budget: more spaces may lack a code. Run it again,"
        messages.warning(request, f"{more} or manage.py backfill_invite_codes for large tables.")
    listed = [o for o in outcomes if o.status in (Status.UPDATED, Status.WOULD_UPDATE)][:20]
    shown = {"summary": summary, "ran": ran, "cap": settings.ADMIN_BACKFILL_PER_REQUEST, "listed": listed}
    return common.render_page(request, model_admin, "backfill", title="Backfill missing invite codes", **shown)


def audit(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Run the audit (GET with ``run``) and its repair (POST); the repair is logged per code change and per run."""
    repairing, report = request.method == "POST", None
    if repairing or request.GET.get("run"):
        try:
            report = audit_invite_codes(repair=repairing)
        except common.DYNAMO_FAILURES as exc:
            common.report_failure(request, exc)
    if report is not None and repairing:
        for outcome in report.changes:
            common.log_change(request, model_admin, outcome)
        counts = ", ".join(f"{kind.replace('_', ' ')}: {n}" for kind, n in sorted(report.repaired.items()) if n)
        if counts:
            subject = DynamoSpace.log_subject(space_id="", name="Invite-code audit repair")
            model_admin.log_change(request, subject, f"Audit repair: {counts}.")
        repaired = sum(report.repaired.values())
        messages.success(request, f"Repaired {repaired} finding{pluralize(repaired)} in {report.seconds:.1f} s.")
        if report.repair_failures:
            messages.error(request, f"Some repairs failed: {common.names(report.failure_texts())}.")
    found = report or AuditReport()
    sections = [(kind, info, found.of(kind), found.repaired.get(kind, 0)) for kind, info in KINDS.items()]
    # The repair leaves legacy-format codes alone (they work): alone, they offer no repair.
    repairable = any(finding.kind is not Kind.LEGACY_FORMAT_CODES for finding in found.findings)
    shown = {"report": report, "repairing": repairing, "sections": sections, "repairable": repairable}
    return common.render_page(request, model_admin, "audit", title="Audit invite codes", **shown)
