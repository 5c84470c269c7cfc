"""What every admin page for spaces shares: URLs, the page context, permissions, messages, the admin log."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from pynamodb.exceptions import PynamoDBException

from invites.models import DynamoSpace
from invites.services import CodeChange
from spaces.dynamodb import DynamoUnavailable, short_reason
from spaces.models import Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin

# The ``source`` the engine logs for every change made from the admin.
SOURCE = "admin"
DYNAMO_FAILURES = (DynamoUnavailable, PynamoDBException)


def url(name: str, *args: str) -> str:
    return reverse(f"admin:invites_dynamospace_{name}", args=args)


def page_context(request: HttpRequest, model_admin: SpaceAdmin, **extra: Any) -> dict[str, Any]:
    """The admin site's own context (``each_context``) plus what the admin's templates read about the model."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": DynamoSpace._meta,
        "has_view_permission": True,
        "has_change_permission": model_admin.has_change_permission(request),
        **extra,
    }


def require_view(request: HttpRequest, model_admin: SpaceAdmin) -> None:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied


def require_change(request: HttpRequest, model_admin: SpaceAdmin) -> None:
    if not model_admin.has_change_permission(request):
        raise PermissionDenied


def report_dynamo_failure(request: HttpRequest, exc: Exception) -> None:
    if isinstance(exc, DynamoUnavailable):
        text = f"DynamoDB cannot be reached: {exc}"
    else:
        text = f"DynamoDB refused the request: {short_reason(exc)}"
    messages.error(request, text)


def safe_next(request: HttpRequest, default: str) -> str:
    """The ``next`` address of the request when it stays on this site, else ``default``."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def space_label(space: Space) -> str:
    return f"“{space.name}” ({space.id})" if space.name else space.id


def names(entries: Iterable[str], *, shown: int = 20) -> str:
    """A list for a message: the first ``shown`` entries, then how many more."""
    items = list(entries)
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def usernames(user_ids: Iterable[str | None]) -> dict[str, str]:
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


def log_code_change(
    request: HttpRequest,
    model_admin: SpaceAdmin,
    *,
    space_id: str,
    name: str | None,
    old_code: str | None,
    new_code: str | None,
) -> None:
    """One admin log entry per change: who and when, which space, old code -> new code."""
    message = f"Changed invite code from {old_code or '(none)'} to {new_code}."
    model_admin.log_change(request, DynamoSpace.log_subject(space_id=space_id, name=name), message)


def log_pause_change(request: HttpRequest, model_admin: SpaceAdmin, *, space: Space, paused: bool) -> None:
    """One admin log entry for pausing or unpausing a space's code (its policy; the code stays)."""
    message = f"{'Paused' if paused else 'Unpaused'} invite code {space.invite_code}."
    model_admin.log_change(request, DynamoSpace.log_subject(space_id=space.id, name=space.name), message)


def log_code_changes(
    request: HttpRequest, model_admin: SpaceAdmin, changes: Iterable[tuple[Space, CodeChange]]
) -> None:
    for space, change in changes:
        log_code_change(
            request, model_admin, space_id=space.id, name=space.name, old_code=change.old_code, new_code=change.new_code
        )
