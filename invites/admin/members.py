"""A space's people: remove (and block), unblock, clean up after a leaked code; the engine's, as staff (actor None)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_POST

from invites import codes
from invites.admin import common
from invites.services import SpaceOutcome, Status
from spaces.members import space_member_remove, space_members_cleanup, space_user_unblock
from spaces.models import Space
from spaces.selectors import space_get, space_with_membership

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


def _back(space_id: str) -> str:
    return reverse("admin:invites_dynamospace_change", args=[space_id])


def _asked(request: HttpRequest, model_admin: SpaceAdmin, space: Space, **fields: str) -> HttpResponse | None:
    """The confirmation page (posting ``fields`` and ``block`` back with ``confirm=yes``), or None once confirmed."""
    if request.POST.get("confirm") == "yes":
        return None
    fields["block"] = request.POST.get("block", "no")
    shown = dict(space=space, fields=fields, back=_back(space.id), title="Remove people from the space?")
    return common.render_page(request, model_admin, "members_confirmation", **shown)


def _done(request: HttpRequest, model_admin: SpaceAdmin, space: Space, change: str) -> None:
    common.log_change(request, model_admin, SpaceOutcome(space.id, Status.UPDATED, name=space.name or ""), change)
    messages.success(request, f"Space “{space.name or space.id}” ({space.id}): {change}")


@require_POST
def member_remove(request: HttpRequest, space_id: str, user_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Remove a member (``block=yes``: and block them): one BatchGetItem, then one transaction once confirmed."""
    block = request.POST.get("block") == "yes"

    def act() -> HttpResponse | None:
        space, target = space_with_membership(space_id=space_id, user_id=user_id)
        # Someone who is not a member hears so from the engine, unasked.
        if target and (asking := _asked(request, model_admin, space, user_id=user_id, role=target.role)):
            return asking
        space_member_remove(space=space, user_id=user_id, target=target, actor=None, block=block)
        done = ("Removed and blocked member" if target else "Blocked user") if block else "Removed member"
        _done(request, model_admin, space, f"{done} {user_id}.")
        return None

    return common.write(request, _back(space_id), act, f"User {user_id} was not removed from space {space_id}")


@require_POST
def unblock(request: HttpRequest, space_id: str, user_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Let a blocked user join again (nothing is lost: unconfirmed): one GetItem, one transaction."""

    def act() -> None:
        space = space_get(space_id=space_id)
        space_user_unblock(space=space, user_id=user_id, actor=None)
        _done(request, model_admin, space, f"Unblocked user {user_id}.")

    return common.write(request, _back(space_id), act, f"User {user_id} was not unblocked in space {space_id}")


@require_POST
def cleanup(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Remove (``block=yes``: and block) everyone who came in with ``code``, once confirmed, within the request's
    cap and time budget (``MEMBERS_CLEANUP_PER_REQUEST``, ``MEMBERS_CLEANUP_SECONDS``); again for the rest."""
    typed, block = request.POST.get("code", ""), request.POST.get("block") == "yes"

    def act() -> HttpResponse | None:
        space = space_get(space_id=space_id)
        try:
            code = codes.normalize_typed_code(typed)
        except codes.MalformedCode:
            messages.error(request, f"“{typed.strip()}” is not an invite code: nobody was removed.")
            return None
        if asking := _asked(request, model_admin, space, code=code):
            return asking
        most, seconds = settings.MEMBERS_CLEANUP_PER_REQUEST, settings.MEMBERS_CLEANUP_SECONDS
        report = space_members_cleanup(space=space, code=code, actor=None, block=block, most=most, seconds=seconds)
        verb, n = "Removed and blocked" if block else "Removed", report.removed
        if n:
            _done(request, model_admin, space, f"{verb} {n} member{pluralize(n)} who came in with invite code {code}.")
        else:
            messages.info(request, f"Nobody who came in with invite code {code} was left to remove.")
        if not report.complete:
            messages.warning(request, "This request stopped at its cap or its time budget: run it again for the rest.")
        return None

    return common.write(request, _back(space_id), act, f"Nobody was removed from space {space_id}")
