"""What the space pages share: the page context, how values and outcomes are shown, the admin log."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pynamodb.exceptions import PynamoDBException

from invites.models import DynamoSpace
from invites.policies import InvitePolicy, expires_at_iso, now_epoch, stopped_by, uses_of
from invites.services import SpaceOutcome, Status
from spaces.dynamodb import short_reason
from spaces.exceptions import DomainError, DynamoUnavailable, SpaceNotFound
from spaces.models import Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin

SOURCE = "admin"  # the engine's log names the admin as the source of its changes
DYNAMO_FAILURES = (DynamoUnavailable, PynamoDBException)
USER_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")  # str() of a user's UUID key


def render_page(
    request: HttpRequest, model_admin: SpaceAdmin, page: str, status: int = 200, /, **extra: Any
) -> HttpResponse:
    context = model_admin.admin_site.each_context(request) | {"opts": DynamoSpace._meta, "has_view_permission": True}
    context |= {"has_change_permission": model_admin.has_change_permission(request), **extra}
    return render(request, f"admin/invites/dynamospace/{page}.html", context, status=status)


def report_failure(request: HttpRequest, exc: Exception) -> None:
    state = "cannot be reached" if isinstance(exc, DynamoUnavailable) else "refused the request"
    messages.error(request, f"DynamoDB {state}: {short_reason(exc)}")


def write(request: HttpRequest, back: str, act: Callable[[], HttpResponse | None], failed: str) -> HttpResponse:
    """Act; what goes wrong is a message (``failed``: what was not done), then back (a missing space: to the list)."""
    try:
        return act() or HttpResponseRedirect(back)
    except SpaceNotFound as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:invites_dynamospace_changelist"))
    except DomainError as exc:
        messages.error(request, f"{failed}: {exc}")
    except DYNAMO_FAILURES as exc:
        report_failure(request, exc)
    return HttpResponseRedirect(back)


def usernames(user_ids: Iterable[str | None]) -> dict[str, str]:
    """Usernames of the site's users behind user ids stored in DynamoDB (other ids are not users here)."""
    valid = {user_id for user_id in user_ids if user_id and USER_ID.fullmatch(user_id)}
    return {str(pk): name for pk, name in get_user_model().objects.filter(pk__in=valid).values_list("pk", "username")}


def when(stored: str | None) -> SafeString:
    """A stored ISO timestamp as the admin shows dates (zoneless: UTC, as the earlier system wrote), else as stored."""
    try:
        value = datetime.fromisoformat(stored or "")
    except ValueError:
        return format_html("{}", stored or "")
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    local = timezone.localtime(value)
    # Each half on one line, so that a narrow column breaks between the date and the time only.
    html = '<time datetime="{}" title="{}"><span class="nowrap">{},</span> <span class="nowrap">{}</span></time>'
    return format_html(html, value.isoformat(), stored, date_format(local), time_format(local))


def policy_shown(space: Space, now: int | None = None) -> dict[str, Any]:
    """A code's invite policy as the pages show it, and why it does not work now."""
    policy, stopped = InvitePolicy.of(space), stopped_by(space, now_epoch() if now is None else now)
    expires = when(expires_at_iso(policy.expires_at))  # "" for never
    return dict(policy=policy, uses=uses_of(space), expires=expires, stopped_by=stopped)


def label(outcome: SpaceOutcome) -> str:
    return f"“{outcome.name}” ({outcome.space_id})" if outcome.name else outcome.space_id


def names(entries: Iterable[str], *, shown: int = 20) -> str:
    items = list(entries)
    return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")


def log_change(request: HttpRequest, model_admin: SpaceAdmin, outcome: SpaceOutcome, message: str = "") -> None:
    message = message or f"Changed invite code from {outcome.old_code or '(none)'} to {outcome.new_code}."
    model_admin.log_change(request, DynamoSpace.log_subject(space_id=outcome.space_id, name=outcome.name), message)


def report_outcomes(
    request: HttpRequest, model_admin: SpaceAdmin, outcomes: list[SpaceOutcome], verb: str, why: str
) -> None:
    """The admin log of each change, then a message each for what changed, was left alone (``why``) and failed."""
    by_status = {status: [o for o in outcomes if o.status is status] for status in Status}
    changed, left, failed = by_status[Status.UPDATED], by_status[Status.SKIPPED], by_status[Status.FAILED]
    for outcome in changed:
        log_change(request, model_admin, outcome)
    if changed:
        messages.success(request, f"{verb} {len(changed)} space{pluralize(changed)}: {names(map(label, changed))}.")
    if left:
        details = names(f"{label(o)}: {why}" for o in left)
        messages.info(request, f"Left {len(left)} space{pluralize(left)} unchanged ({details}).")
    if failed:
        details = names(f"{o.name or o.space_id} ({o.space_id}): {o.error}" for o in failed)
        messages.error(request, f"Failed for {len(failed)} space{pluralize(failed)}: {details}.")
