"""One space: its page (fields, members, code and its policy, admin history), its regenerate and pause buttons.

The regenerate button is in every row of the list and on this page. A space
without a code gets one at once; a space with a code, or whose code changed
since the page was shown, goes through a confirmation page first: its old
invite link will stop working.

The pause button (this page only) pauses or unpauses the current code through
the engine's ``invite_code_policy_update``: the code is kept, its links stop
working until it is unpaused. Nothing is lost by either, so it needs no
confirmation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_POST

from invites import selectors
from invites.admin.common import (
    DYNAMO_FAILURES,
    SOURCE,
    log_code_change,
    log_pause_change,
    page_context,
    report_dynamo_failure,
    require_change,
    require_view,
    safe_next,
    space_label,
    url,
    usernames,
)
from invites.admin.display import Moment, PolicyDisplay, space_type
from invites.models import DynamoSpace
from invites.services import CodeChange, invite_code_policy_update, invite_code_regenerate
from spaces.exceptions import DomainError, NoInviteCode, SpaceNotFound
from spaces.models import Membership, Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


@require_POST
def regenerate(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Regenerate once the code the caller saw is confirmed; a confirmed regeneration is one read, one transaction."""
    require_change(request, model_admin)
    list_url = url("changelist")
    next_url = safe_next(request, list_url)
    try:
        space = selectors.space_by_id(space_id=space_id)
        if space is None:
            raise SpaceNotFound(space_id)
        if _needs_confirmation(request, space):
            return _confirmation(request, model_admin, space, next_url)
        change = invite_code_regenerate(space_id=space.id, space=space, actor_id=str(request.user.pk), source=SOURCE)
    except SpaceNotFound as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(list_url)
    except DomainError as exc:
        messages.error(request, f"The invite code of space {space_id} was not changed: {exc}")
        return HttpResponseRedirect(next_url)
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
        return HttpResponseRedirect(next_url)
    _report(request, model_admin, space, change)
    return HttpResponseRedirect(next_url)


def _expected_code(request: HttpRequest, space: Space) -> str | None:
    """The code the page the caller came from showed ("" = none); the current one when it sent none."""
    posted = request.POST.get("expected_code")
    return (posted or None) if posted is not None else (space.invite_code or None)


def _needs_confirmation(request: HttpRequest, space: Space) -> bool:
    current = space.invite_code or None
    changed_meanwhile = _expected_code(request, space) != current
    return changed_meanwhile or (current is not None and request.POST.get("confirm") != "yes")


def _confirmation(request: HttpRequest, model_admin: SpaceAdmin, space: Space, next_url: str) -> HttpResponse:
    context = page_context(
        request,
        model_admin,
        title="Regenerate the invite code?",
        space=space,
        code_changed_meanwhile=_expected_code(request, space) != (space.invite_code or None),
        next_url=next_url,
        regenerate_url=url("regenerate", space.id),
        detail_url=url("change", space.id),
    )
    return render(request, "admin/invites/dynamospace/regenerate_confirmation.html", context)


def _report(request: HttpRequest, model_admin: SpaceAdmin, space: Space, change: CodeChange) -> None:
    if not change.applied:
        messages.warning(
            request,
            f"Someone else regenerated the invite code of space {space_label(space)} at the same moment; "
            f"its code is now {change.new_code}.",
        )
        return
    log_code_change(
        request, model_admin, space_id=space.id, name=space.name, old_code=change.old_code, new_code=change.new_code
    )
    was = f"was {change.old_code}" if change.old_code else "it had none"
    messages.success(request, f"The invite code of space {space_label(space)} is now {change.new_code} ({was}).")


@require_POST
def pause(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Pause (``paused=yes``) or unpause (``paused=no``) the current code: one read, one transaction."""
    require_change(request, model_admin)
    detail_url = url("change", space_id)
    wanted = {"yes": True, "no": False}.get(request.POST.get("paused", ""))
    if wanted is None:
        messages.error(request, "Say whether to pause the invite code (paused=yes) or unpause it (paused=no).")
        return HttpResponseRedirect(detail_url)
    try:
        space = selectors.space_by_id(space_id=space_id)
        if space is None:
            raise SpaceNotFound(space_id)
        updated = invite_code_policy_update(
            space_id=space.id, space=space, paused=wanted, actor_id=str(request.user.pk)
        )
    except SpaceNotFound as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(url("changelist"))
    except NoInviteCode:
        messages.error(request, f"Space {space_id} has no invite code to pause or unpause; give it one first.")
        return HttpResponseRedirect(detail_url)
    except DomainError as exc:
        messages.error(request, f"The invite code of space {space_id} was not changed: {exc}")
        return HttpResponseRedirect(detail_url)
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
        return HttpResponseRedirect(detail_url)
    log_pause_change(request, model_admin, space=updated, paused=wanted)
    _report_pause(request, updated, paused=wanted)
    return HttpResponseRedirect(detail_url)


def _report_pause(request: HttpRequest, space: Space, *, paused: bool) -> None:
    label, code = space_label(space), space.invite_code
    if paused:
        messages.success(request, f"The invite code {code} of space {label} is paused: nobody can join with it.")
        return
    still_stopped = PolicyDisplay.of(space).stopped_by
    if still_stopped:
        why = " and ".join(still_stopped)
        messages.warning(request, f"The invite code {code} of space {label} is no longer paused, but still {why}.")
    else:
        messages.success(request, f"The invite code {code} of space {label} works again.")


def space_detail(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    require_view(request, model_admin)
    space, members, consistency, dynamo_failed = None, [], None, False
    try:
        space, members = selectors.space_detail(space_id=space_id)
        if space is None:
            messages.error(request, str(SpaceNotFound(space_id)))
        else:
            consistency = selectors.invite_code_consistency(space=space)
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
        dynamo_failed = True
    context = page_context(
        request,
        model_admin,
        title=f"Space {space.name or space.id}" if space else "Space not found",
        original=(space.name or space.id) if space else space_id,
        space=space,
        space_id=space_id,
        consistency=consistency,
        history=_history(space_id),
        regenerate_url=url("regenerate", space_id),
        pause_url=url("pause", space_id),
        detail_url=url("change", space_id),
        **_shown(space),
        **_people(space, members),
    )
    status = 404 if space is None and not dynamo_failed else 200
    return render(request, "admin/invites/dynamospace/change_form.html", context, status=status)


def _shown(space: Space | None) -> dict[str, Any]:
    """The space's values as the page shows them: dates, the type (the API's default), the code's policy."""
    if space is None:
        return {}
    return {
        "created": Moment.of(space.created_at),
        "updated": Moment.of(space.updated_at),
        "space_type": space_type(space),
        "policy": PolicyDisplay.of(space),
    }


def _people(space: Space | None, members: list[Membership]) -> dict[str, Any]:
    """The owner's and the members' usernames, where the user ids are users of this site."""
    known = usernames([*(m.user_id for m in members), space.owner_id if space else None])
    owner_id = (space.owner_id or "") if space else ""
    return {
        "owner": known.get(owner_id, owner_id),
        "members": [
            {"membership": m, "username": known.get(m.user_id, ""), "joined": Moment.of(m.joined_at)} for m in members
        ],
    }


def _history(space_id: str) -> QuerySet[LogEntry]:
    """The admin log entries about this space, newest first."""
    return (
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(DynamoSpace), object_id=space_id)
        .select_related("user")
        .order_by("-action_time")
    )
