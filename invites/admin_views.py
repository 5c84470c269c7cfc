"""The admin's space pages: parse the request, call one selector or service, render.

Every write goes through the invite-code engine (``invites.services``,
``invites.bulk``, ``invites.backfill``, ``invites.audit``); these views only
check permissions, ask for confirmation, record what happened in Django's
admin log and turn DynamoDB failures into error messages on the page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from pynamodb.exceptions import PynamoDBException

from invites import selectors
from invites.audit import audit_invite_codes
from invites.backfill import BackfillConfigError
from invites.bulk import (
    BackfillBatch,
    BulkOutcome,
    invite_codes_add_missing,
    invite_codes_audit_repair,
    invite_codes_backfill_batch,
    invite_codes_regenerate_many,
)
from invites.models import DynamoSpace
from invites.services import CodeChange, invite_code_regenerate
from spaces.dynamodb import DynamoUnavailable, short_reason
from spaces.exceptions import DomainError, SpaceNotFound
from spaces.ids import is_valid_space_id
from spaces.models import Membership, Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin

SOURCE = "admin"
ACTION_ADD_MISSING = "add_missing_invite_codes"
ACTION_REGENERATE = "regenerate_invite_codes"
ACTIONS = (
    (ACTION_ADD_MISSING, "Add invite codes to selected spaces that have none"),
    (ACTION_REGENERATE, "Regenerate invite codes for selected spaces"),
)
HAS_CODE_CHOICES = {"yes": True, "no": False}
# How many spaces the backfill page lists, and entries per problem kind on the audit page.
BACKFILL_LISTED = 20
AUDIT_LISTED = 50
AUDIT_KINDS = (
    ("spaces_without_code", "Spaces without an invite code"),
    ("codes_without_mapping", "Codes without their INVITE# mapping"),
    ("mappings_with_missing_space", "INVITE# mappings of spaces that do not exist"),
    ("stale_mappings", "INVITE# mappings of codes a space no longer holds"),
    ("duplicate_codes", "Codes held by more than one space (or not claimed by their holder)"),
    ("missing_claims", "Codes without their CODE# claim"),
)
# Cursor trails longer than this are cut at the oldest end: "previous" still
# works for the last pages seen, and the URL stays short.
MAX_CURSOR_TRAIL = 40


# --- shared helpers -----------------------------------------------------------------------


def _url(name: str, *args: str) -> str:
    return reverse(f"admin:invites_dynamospace_{name}", args=args)


def _context(request: HttpRequest, model_admin: SpaceAdmin, **extra: Any) -> dict[str, Any]:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": DynamoSpace._meta,
        "has_view_permission": True,
        "has_change_permission": model_admin.has_change_permission(request),
        **extra,
    }


def _require_view(request: HttpRequest, model_admin: SpaceAdmin) -> None:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied


def _require_change(request: HttpRequest, model_admin: SpaceAdmin) -> None:
    if not model_admin.has_change_permission(request):
        raise PermissionDenied


def _report_dynamo_failure(request: HttpRequest, exc: Exception) -> None:
    if isinstance(exc, DynamoUnavailable):
        text = f"DynamoDB cannot be reached: {exc}"
    else:
        text = f"DynamoDB refused the request: {short_reason(exc)}"
    messages.error(request, text)


DYNAMO_FAILURES = (DynamoUnavailable, PynamoDBException)


def _space_label(space: Space) -> str:
    return f"“{space.name}” ({space.id})" if space.name else space.id


def _usernames(user_ids: Iterable[str | None]) -> dict[str, str]:
    """Usernames of the Django users behind user ids stored in DynamoDB (legacy ids stay as they are)."""
    valid: set[uuid.UUID] = set()
    for user_id in user_ids:
        try:
            valid.add(uuid.UUID(str(user_id)))
        except ValueError:
            continue
    if not valid:
        return {}
    rows = get_user_model().objects.filter(pk__in=valid).values_list("pk", "username")
    return {str(pk): username for pk, username in rows}


def _log_code_change(
    request: HttpRequest, *, space_id: str, name: str | None, old_code: str | None, new_code: str | None
) -> None:
    """One admin log entry per change: who and when (LogEntry), which space, old code -> new code."""
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(DynamoSpace).pk,
        object_id=space_id,
        object_repr=(name or space_id)[:200],
        action_flag=CHANGE,
        change_message=f"Changed invite code from {old_code or '(none)'} to {new_code}.",
    )


def _log_changes(request: HttpRequest, changes: Iterable[tuple[Space, CodeChange]]) -> None:
    for space, change in changes:
        _log_code_change(
            request, space_id=space.id, name=space.name, old_code=change.old_code, new_code=change.new_code
        )


def _safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


# --- the space list -------------------------------------------------------------------------


def _cursor_trail(raw: str | None) -> list[str] | None:
    """The ``back`` parameter: ``after`` cursors of earlier pages, oldest first ("" = first page)."""
    if raw is None:
        return None
    return [cursor for cursor in raw.split(",") if cursor == "" or selectors.key_from_cursor(cursor)]


def _list_query(**params: str | None) -> str:
    return "?" + urlencode({name: value for name, value in params.items() if value is not None})


def space_list(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    _require_view(request, model_admin)
    if request.method == "POST":
        return _run_bulk_action(request, model_admin)

    query = request.GET.get("q", "").strip()
    has_code_param = request.GET.get("has_code", "")
    has_code = HAS_CODE_CHOICES.get(has_code_param)
    after = request.GET.get("after") or None
    if after is not None and selectors.key_from_cursor(after) is None:
        messages.error(request, "That page cursor is not valid; showing the first page.")
        after = None
    trail = _cursor_trail(request.GET.get("back")) if after else None
    spaces: list[Space] = []
    next_cursor = None
    short_page = False
    search_note = ""
    failed = False
    try:
        if query:
            found = selectors.space_search(query=query)
            spaces, search_note = found.spaces, found.note
        else:
            page = selectors.space_page(page_size=model_admin.list_per_page, cursor=after, has_code=has_code)
            spaces, next_cursor, short_page = page.spaces, page.next_cursor, page.short
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
        failed = True

    filter_params = {"has_code": has_code_param or None}
    next_url = previous_url = None
    if next_cursor:
        next_trail = [*(trail or []), after or ""][-MAX_CURSOR_TRAIL:]
        next_url = _list_query(**filter_params, after=next_cursor, back=",".join(next_trail))
    if after:
        earlier = trail or [""]
        previous_after = earlier[-1] or None
        previous_back = ",".join(earlier[:-1]) if previous_after else None
        previous_url = _list_query(**filter_params, after=previous_after, back=previous_back)
    owners = _usernames(space.owner_id for space in spaces)
    rows = [
        {
            "space": space,
            "owner": owners.get(space.owner_id or "", space.owner_id or ""),
            "detail_url": _url("change", space.id),
            "regenerate_url": _url("regenerate", space.id),
        }
        for space in spaces
    ]
    filter_choices = [
        {"label": label, "selected": has_code_param == value, "url": _list_query(has_code=value or None, q=None)}
        for value, label in (("", "All"), ("yes", "Yes"), ("no", "No"))
    ]
    context = _context(
        request,
        model_admin,
        title="Select space to change" if model_admin.has_change_permission(request) else "Select space to view",
        subtitle=None,
        rows=rows,
        query=query,
        search_note=search_note,
        has_code=has_code_param,
        filter_choices=filter_choices,
        has_active_filter=bool(has_code_param),
        next_url=next_url,
        previous_url=previous_url,
        short_page=short_page,
        actions=ACTIONS,
        dynamo_failed=failed,
        list_url=request.get_full_path(),
        backfill_url=_url("backfill"),
        audit_url=_url("audit"),
    )
    return render(request, "admin/invites/dynamospace/change_list.html", context)


def _run_bulk_action(request: HttpRequest, model_admin: SpaceAdmin) -> HttpResponse:
    _require_change(request, model_admin)
    back_to_list = request.get_full_path()
    action = request.POST.get("action", "")
    selected = [space_id for space_id in request.POST.getlist("_selected_action") if is_valid_space_id(space_id)]
    if action not in dict(ACTIONS):
        messages.warning(request, "No action selected.")
        return HttpResponseRedirect(back_to_list)
    if not selected:
        messages.warning(
            request, "Items must be selected in order to perform actions on them. No items have been changed."
        )
        return HttpResponseRedirect(back_to_list)
    try:
        if action == ACTION_ADD_MISSING:
            outcome = invite_codes_add_missing(space_ids=selected, actor_id=str(request.user.pk), source=SOURCE)
        elif request.POST.get("post") != "yes":
            return _confirm_bulk_regenerate(request, model_admin, selected)
        else:
            expected = {
                space_id: request.POST.get(f"expected_code.{space_id}") or None
                for space_id in selected
                if f"expected_code.{space_id}" in request.POST
            }
            outcome = invite_codes_regenerate_many(
                space_ids=selected, expected_codes=expected, actor_id=str(request.user.pk), source=SOURCE
            )
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
        return HttpResponseRedirect(back_to_list)
    _report_bulk_outcome(
        request,
        outcome,
        verb="Added invite codes to" if action == ACTION_ADD_MISSING else "Regenerated the invite codes of",
    )
    return HttpResponseRedirect(back_to_list)


def _confirm_bulk_regenerate(request: HttpRequest, model_admin: SpaceAdmin, selected: list[str]) -> HttpResponse:
    found = selectors.spaces_for_ids(space_ids=selected)
    spaces = [found[space_id] for space_id in selected if space_id in found]
    if not spaces:
        messages.error(request, "None of the selected spaces exists any more.")
        return HttpResponseRedirect(request.get_full_path())
    context = _context(
        request,
        model_admin,
        title="Regenerate invite codes?",
        spaces=spaces,
        with_code=sum(1 for space in spaces if space.invite_code),
        action=ACTION_REGENERATE,
    )
    return render(request, "admin/invites/dynamospace/bulk_regenerate_confirmation.html", context)


def _names(entries: Iterable[str], *, shown: int = 20) -> str:
    """A list for a message: the first ``shown`` entries, then how many more."""
    items = list(entries)
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def _report_bulk_outcome(request: HttpRequest, outcome: BulkOutcome, *, verb: str) -> None:
    _log_changes(request, outcome.changed)
    if outcome.changed:
        count = len(outcome.changed)
        messages.success(
            request,
            f"{verb} {count} space{'s' if count != 1 else ''}: {_names(_space_label(s) for s, _ in outcome.changed)}.",
        )
    if outcome.left_alone:
        count = len(outcome.left_alone)
        details = _names(f"{_space_label(space)}: {reason}" for space, reason in outcome.left_alone)
        messages.info(request, f"Left {count} space{'s' if count != 1 else ''} unchanged ({details}).")
    if outcome.failed:
        count = len(outcome.failed)
        details = _names(
            f"{failure.name or failure.space_id} ({failure.space_id}): {failure.error}" for failure in outcome.failed
        )
        messages.error(request, f"Failed for {count} space{'s' if count != 1 else ''}: {details}.")
    if not (outcome.changed or outcome.left_alone or outcome.failed):
        messages.info(request, "Nothing to do.")


# --- one space --------------------------------------------------------------------------------


@require_POST
def regenerate(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """The row button and the detail page's button.

    A space without a code gets one at once. A space with a code (or whose
    code changed since the page was shown) goes through a confirmation page
    first: its old invite link will stop working.
    """
    _require_change(request, model_admin)
    list_url = _url("changelist")
    next_url = _safe_next(request, list_url)
    try:
        space = selectors.space_by_id(space_id=space_id)
        if space is None:
            raise SpaceNotFound(space_id)
        current = space.invite_code or None
        posted_expectation = request.POST.get("expected_code")
        expected = (posted_expectation or None) if posted_expectation is not None else current
        confirmed = request.POST.get("confirm") == "yes"
        if expected != current or (current and not confirmed):
            context = _context(
                request,
                model_admin,
                title="Regenerate the invite code?",
                space=space,
                code_changed_meanwhile=expected != current,
                next_url=next_url,
                regenerate_url=_url("regenerate", space.id),
                detail_url=_url("change", space.id),
            )
            return render(request, "admin/invites/dynamospace/regenerate_confirmation.html", context)
        change = invite_code_regenerate(space_id=space.id, space=space, actor_id=str(request.user.pk), source=SOURCE)
    except SpaceNotFound as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(list_url)
    except DomainError as exc:
        messages.error(request, f"The invite code of space {space_id} was not changed: {exc}")
        return HttpResponseRedirect(next_url)
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
        return HttpResponseRedirect(next_url)
    if change.applied:
        _log_changes(request, [(space, change)])
        was = f"was {change.old_code}" if change.old_code else "it had none"
        messages.success(request, f"The invite code of space {_space_label(space)} is now {change.new_code} ({was}).")
    else:
        messages.warning(
            request,
            f"Someone else regenerated the invite code of space {_space_label(space)} at the same moment; "
            f"its code is now {change.new_code}.",
        )
    return HttpResponseRedirect(next_url)


def space_detail(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    _require_view(request, model_admin)
    space = None
    members: list[Membership] = []
    consistency = None
    try:
        space, members = selectors.space_detail(space_id=space_id)
        if space is None:
            messages.error(request, str(SpaceNotFound(space_id)))
        else:
            consistency = selectors.invite_code_consistency(space=space)
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
        dynamo_failed = True
    else:
        dynamo_failed = False
    names = _usernames([*(m.user_id for m in members), space.owner_id if space else None])
    history = (
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(DynamoSpace), object_id=space_id)
        .select_related("user")
        .order_by("-action_time")
    )
    context = _context(
        request,
        model_admin,
        title=f"Space {space.name or space.id}" if space else "Space not found",
        space=space,
        space_id=space_id,
        owner=names.get(space.owner_id or "", space.owner_id or "") if space else "",
        members=[{"membership": m, "username": names.get(m.user_id, "")} for m in members],
        consistency=consistency,
        history=history,
        regenerate_url=_url("regenerate", space_id),
        detail_url=_url("change", space_id),
    )
    return render(
        request,
        "admin/invites/dynamospace/change_form.html",
        context,
        status=404 if space is None and not dynamo_failed else 200,
    )


# --- backfill and audit ---------------------------------------------------------------------


def backfill(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Preview (a dry run, GET) and run (POST) the backfill, capped per request."""
    _require_view(request, model_admin)
    cap = settings.ADMIN_BACKFILL_PER_REQUEST
    batch = None
    ran = request.method == "POST"
    if ran:
        _require_change(request, model_admin)
    try:
        if ran or request.GET.get("preview"):
            batch = invite_codes_backfill_batch(
                dry_run=not ran,
                cap=cap,
                seconds=settings.ADMIN_BACKFILL_SECONDS,
                actor_id=str(request.user.pk) if ran else None,
                source=SOURCE,
            )
    except BackfillConfigError as exc:
        messages.error(request, f"The backfill cannot run: {exc}")
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
    if ran and batch is not None:
        for space_id, name, new_code in batch.report.changes:
            _log_code_change(request, space_id=space_id, name=name, old_code=None, new_code=new_code)
        _report_backfill(request, batch)
    report = batch.report if batch else None
    context = _context(
        request,
        model_admin,
        title="Backfill missing invite codes",
        batch=batch,
        report=report,
        ran=ran,
        cap=cap,
        listed=report.changes[:BACKFILL_LISTED] if report else [],
        listed_limit=BACKFILL_LISTED,
        backfill_url=_url("backfill"),
        missing_list_url=_url("changelist") + _list_query(has_code="no"),
    )
    return render(request, "admin/invites/dynamospace/backfill.html", context)


def _report_backfill(request: HttpRequest, batch: BackfillBatch) -> None:
    report = batch.report
    plural = "s" if report.updated != 1 else ""
    messages.success(request, f"Gave invite codes to {report.updated} space{plural} in {report.seconds:.1f} s.")
    if report.skipped_already_had_code:
        messages.info(
            request, f"{report.skipped_already_had_code} spaces received a code from someone else meanwhile; kept it."
        )
    if report.failed:
        details = _names(f"{name or space_id} ({space_id}): {error}" for space_id, name, error in report.failed)
        messages.error(request, f"Failed for {len(report.failed)} spaces: {details}.")
    if batch.error:
        messages.error(request, f"The backfill stopped part way, DynamoDB cannot be reached: {batch.error}")
    if batch.more_may_remain:
        messages.warning(
            request,
            "This request stopped at its cap or its time budget; more spaces may lack a code. Run it again, "
            "or use `manage.py backfill_invite_codes` for large tables.",
        )


def _log_audit_repair(request: HttpRequest, repaired: dict[str, int]) -> None:
    """One admin log entry for the whole repair (mappings and claims are not tied to one code change)."""
    if not any(repaired.values()):
        return
    details = ", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in sorted(repaired.items()) if count)
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type_id=ContentType.objects.get_for_model(DynamoSpace).pk,
        object_id="",
        object_repr="Invite-code audit repair",
        action_flag=CHANGE,
        change_message=f"Audit repair: {details}.",
    )


def _audit_entry(kind: str, entry: Any) -> dict[str, Any]:
    """One finding of the audit in words, with the space it concerns (for a link), if there is one."""
    if kind == "spaces_without_code":
        return {"space_id": entry, "text": "has no invite code"}
    if kind in ("codes_without_mapping", "missing_claims"):
        space_id, code = entry
        missing = "INVITE# mapping" if kind == "codes_without_mapping" else "CODE# claim"
        return {"space_id": space_id, "text": f"holds {code}, which has no {missing}"}
    if kind == "mappings_with_missing_space":
        code, space_id = entry
        return {"space_id": None, "text": f"INVITE#{code} points at space {space_id}, which does not exist"}
    if kind == "stale_mappings":
        code, space_id, current = entry
        return {"space_id": space_id, "text": f"has a mapping INVITE#{code} but holds {current or 'no code'}"}
    if kind == "duplicate_codes":
        code, space_ids = entry
        return {"space_id": None, "text": f"{code} is held by {', '.join(space_ids)}"}
    return {"space_id": None, "text": str(entry)}


def audit(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Run the audit (GET with ``run``) and its repair (POST)."""
    _require_view(request, model_admin)
    report = None
    repaired_changes: list[tuple[Space, CodeChange]] = []
    repairing = request.method == "POST"
    if repairing:
        _require_change(request, model_admin)
    try:
        if repairing:
            report, repaired_changes = invite_codes_audit_repair()
        elif request.GET.get("run"):
            report = audit_invite_codes(repair=False)
    except DYNAMO_FAILURES as exc:
        _report_dynamo_failure(request, exc)
    if repairing and report is not None:
        _log_changes(request, repaired_changes)
        _log_audit_repair(request, report.repaired)
        fixed = sum(report.repaired.values())
        messages.success(request, f"Repaired {fixed} problem{'s' if fixed != 1 else ''} in {report.seconds:.1f} s.")
        if report.repair_failures:
            details = _names(f"{kind} {subject}: {error}" for kind, subject, error in report.repair_failures)
            messages.error(request, f"Some repairs failed: {details}.")
    sections = []
    if report is not None:
        sections = [
            {
                "kind": kind,
                "title": title,
                "entries": [_audit_entry(kind, entry) for entry in getattr(report, kind)[:AUDIT_LISTED]],
                "count": count,
            }
            for kind, title in AUDIT_KINDS
            for count in [len(getattr(report, kind))]
        ]
    context = _context(
        request,
        model_admin,
        title="Audit invite codes",
        report=report,
        repairing=repairing,
        sections=sections,
        repaired=sorted(report.repaired.items()) if report else [],
        repaired_changes=repaired_changes,
        listed_limit=AUDIT_LISTED,
        audit_url=_url("audit"),
    )
    return render(request, "admin/invites/dynamospace/audit.html", context)
