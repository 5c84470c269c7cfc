"""The table-wide pages: backfill missing codes (preview, capped run) and the audit (findings, repair).

Both read nothing when opened. The backfill calls the capped batch of
:mod:`invites.bulk`; the audit calls :func:`invites.audit.audit_invite_codes`
(or its repair through :mod:`invites.bulk`) and renders the findings, whose
wording is in :mod:`invites.audit.findings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from invites.admin.changelist import list_query
from invites.admin.common import (
    DYNAMO_FAILURES,
    SOURCE,
    log_code_change,
    log_code_changes,
    names,
    page_context,
    plural,
    report_dynamo_failure,
    require_change,
    require_view,
    url,
)
from invites.audit import AuditReport, FindingKind, audit_invite_codes
from invites.backfill import BackfillConfigError
from invites.bulk import BackfillBatch, invite_codes_audit_repair, invite_codes_backfill_batch
from invites.models import DynamoSpace
from invites.services import CodeChange
from spaces.models import Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin

# How many spaces the backfill page lists, and findings per problem kind on the audit page.
BACKFILL_LISTED = 20
AUDIT_LISTED = 50


# --- backfill -----------------------------------------------------------------------------


def backfill(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Preview (a dry run, GET with ``preview``) and run (POST) the backfill, capped per request."""
    require_view(request, model_admin)
    ran = request.method == "POST"
    if ran:
        require_change(request, model_admin)
    batch = _backfill_batch(request, ran=ran) if ran or request.GET.get("preview") else None
    if ran and batch is not None:
        for space_id, name, new_code in batch.report.changes:
            log_code_change(request, model_admin, space_id=space_id, name=name, old_code=None, new_code=new_code)
        _report_backfill(request, batch)
    report = batch.report if batch else None
    context = page_context(
        request,
        model_admin,
        title="Backfill missing invite codes",
        crumb="Backfill missing codes",
        batch=batch,
        report=report,
        ran=ran,
        cap=settings.ADMIN_BACKFILL_PER_REQUEST,
        listed=report.changes[:BACKFILL_LISTED] if report else [],
        listed_limit=BACKFILL_LISTED,
        backfill_url=url("backfill"),
        missing_list_url=url("changelist") + list_query(has_code="no"),
    )
    return render(request, "admin/invites/dynamospace/backfill.html", context)


def _backfill_batch(request: HttpRequest, *, ran: bool) -> BackfillBatch | None:
    try:
        return invite_codes_backfill_batch(
            dry_run=not ran,
            cap=settings.ADMIN_BACKFILL_PER_REQUEST,
            seconds=settings.ADMIN_BACKFILL_SECONDS,
            actor_id=str(request.user.pk) if ran else None,
            source=SOURCE,
        )
    except BackfillConfigError as exc:
        messages.error(request, f"The backfill cannot run: {exc}")
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
    return None


def _report_backfill(request: HttpRequest, batch: BackfillBatch) -> None:
    report = batch.report
    messages.success(request, f"Gave invite codes to {plural(report.updated, 'space')} in {report.seconds:.1f} s.")
    if report.skipped_already_had_code:
        messages.info(
            request, f"{report.skipped_already_had_code} spaces received a code from someone else meanwhile; kept it."
        )
    if report.failed:
        details = names(f"{name or space_id} ({space_id}): {error}" for space_id, name, error in report.failed)
        messages.error(request, f"Failed for {len(report.failed)} spaces: {details}.")
    if batch.error:
        messages.error(request, f"The backfill stopped part way, DynamoDB cannot be reached: {batch.error}")
    if batch.more_may_remain:
        messages.warning(
            request,
            "This request stopped at its cap or its time budget; more spaces may lack a code. Run it again, "
            "or use `manage.py backfill_invite_codes` for large tables.",
        )


# --- audit ------------------------------------------------------------------------------------


def audit(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Run the audit (GET with ``run``) and its repair (POST)."""
    require_view(request, model_admin)
    repairing = request.method == "POST"
    if repairing:
        require_change(request, model_admin)
    report, repaired_changes = _audit_report(request, repairing=repairing)
    if repairing and report is not None:
        log_code_changes(request, model_admin, repaired_changes)
        _log_audit_repair(request, model_admin, report)
        _report_repair(request, report)
    context = page_context(
        request,
        model_admin,
        title="Audit invite codes",
        crumb="Audit",
        report=report,
        repairing=repairing,
        sections=_audit_sections(report) if report else [],
        repaired_changes=repaired_changes,
        listed_limit=AUDIT_LISTED,
        audit_url=url("audit"),
    )
    return render(request, "admin/invites/dynamospace/audit.html", context)


def _audit_report(
    request: HttpRequest, *, repairing: bool
) -> tuple[AuditReport | None, list[tuple[Space, CodeChange]]]:
    try:
        if repairing:
            return invite_codes_audit_repair()
        if request.GET.get("run"):
            return audit_invite_codes(repair=False), []
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
    return None, []


def _audit_sections(report: AuditReport) -> list[dict[str, Any]]:
    """Per kind, in the audit's order: the kind (label, meaning, harm, repair), counts and the first findings."""
    return [
        {
            "kind": kind,
            "count": len(report.of(kind)),
            "repaired": report.repaired.get(kind, 0),
            "findings": report.of(kind)[:AUDIT_LISTED],
        }
        for kind in FindingKind
    ]


def _report_repair(request: HttpRequest, report: AuditReport) -> None:
    fixed = sum(report.repaired.values())
    messages.success(request, f"Repaired {plural(fixed, 'problem')} in {report.seconds:.1f} s.")
    if report.repair_failures:
        details = names(failure.describe() for failure in report.repair_failures)
        messages.error(request, f"Some repairs failed: {details}.")


def _log_audit_repair(request: HttpRequest, model_admin: SpaceAdmin, report: AuditReport) -> None:
    """One admin log entry for the whole repair (mappings and claims are not tied to one code change)."""
    counts = sorted((kind, count) for kind, count in report.repaired.items() if count)
    if not counts:
        return
    details = ", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in counts)
    subject = DynamoSpace.log_subject(space_id="", name="Invite-code audit repair")
    model_admin.log_change(request, subject, f"Audit repair: {details}.")
