"""One space: its page (fields, members and blocked users, code, policy, admin history), its code's buttons."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from invites import selectors
from invites.admin import common
from invites.models import DynamoSpace
from invites.services import SpaceOutcome, Status, invite_code_policy_update, invite_code_regenerate
from spaces.exceptions import SpaceNotFound
from spaces.models import DEFAULT_SPACE_TYPE
from spaces.selectors import space_get, space_members, space_members_page

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


@require_POST
def regenerate(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Regenerate (one read, one transaction), confirmed first if it has a code or not the one the caller saw."""
    wanted = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(wanted, {request.get_host()}, request.is_secure())
    back = wanted if wanted and safe else reverse("admin:invites_dynamospace_changelist")

    def act() -> HttpResponse | None:
        space = space_get(space_id=space_id)
        current = space.invite_code or None
        code_changed = (request.POST.get("expected_code", current or "") or None) != current  # since the caller saw it
        if code_changed or (current and request.POST.get("confirm") != "yes"):
            shown = dict(space=space, next_url=back, code_changed=code_changed, title="Regenerate the invite code?")
            return common.render_page(request, model_admin, "regenerate_confirmation", **shown)
        actor = str(request.user.pk)
        outcome = invite_code_regenerate(space_id=space.id, space=space, actor_id=actor, source=common.SOURCE)
        outcome = replace(outcome, name=space.name or "")
        label = common.label(outcome)
        if not outcome.applied:
            text = f"Someone else regenerated the invite code of space {label} at the same moment"
            messages.warning(request, f"{text}; its code is now {outcome.new_code}.")
            return None
        common.log_change(request, model_admin, outcome)
        was = f"was {outcome.old_code}" if outcome.old_code else "it had none"
        messages.success(request, f"The invite code of space {label} is now {outcome.new_code} ({was}).")
        return None

    return common.write(request, back, act, f"The invite code of space {space_id} was not changed")


@require_POST
def pause(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    """Pause (``paused=yes``) or unpause (``paused=no``) the code; nothing is lost, so it needs no confirmation."""
    paused = {"yes": True, "no": False}.get(request.POST.get("paused", ""))

    def act() -> None:
        space = space_get(space_id=space_id)
        if paused is None:
            messages.error(request, "Say whether to pause the invite code (paused=yes) or unpause it (paused=no).")
        elif not space.invite_code:
            messages.error(request, f"Space {space.id} has no invite code to pause or unpause; give it one first.")
        else:
            actor = str(request.user.pk)
            space = invite_code_policy_update(space_id=space.id, space=space, paused=paused, actor_id=actor)
            code, change = space.invite_code, SpaceOutcome(space.id, Status.UPDATED, name=space.name or "")
            common.log_change(request, model_admin, change, f"{'Paused' if paused else 'Unpaused'} invite code {code}.")
            text = f"The invite code {code} of space {common.label(change)}"
            if paused:
                messages.success(request, f"{text} is paused: nobody can join with it.")
            elif still := " and ".join(common.policy_shown(space)["stopped_by"]):
                messages.warning(request, f"{text} is no longer paused, but still {still}.")
            else:
                messages.success(request, f"{text} works again.")

    back = reverse("admin:invites_dynamospace_change", args=[space_id])
    return common.write(request, back, act, f"The invite code of space {space_id} was not changed")


def space_detail(request: HttpRequest, space_id: str, *, model_admin: SpaceAdmin) -> HttpResponse:
    kind = ContentType.objects.get_for_model(DynamoSpace)
    history = LogEntry.objects.filter(content_type=kind, object_id=space_id).select_related("user")  # newest first
    shown, status = dict[str, Any](title="Space not found", original=space_id, history=history), 200
    try:
        space = space_get(space_id=space_id)
        members, problems = space_members(space_id=space.id), selectors.code_problems(space=space)
        blocked, more_blocked = space_members_page(space_id=space.id, limit=500, blocks=True)  # the API lists all
    except SpaceNotFound as exc:
        messages.error(request, str(exc))
        status = 404
    except common.DYNAMO_FAILURES as exc:
        common.report_failure(request, exc)
    else:
        who = common.usernames([*(m.user_id for m in members), *(m.code_set_by for m in members), space.owner_id])
        people = [dict(membership=m, username=who.get(m.user_id, ""), joined=common.when(m.joined_at)) for m in members]
        for person, m in zip(people, members, strict=True):  # who set the code they came in with, by name if a user
            person["by"] = who.get(m.code_set_by or "", m.code_set_by)
        shown |= {"title": f"Space {space.name or space.id}", "original": space.name or space.id, "space": space}
        shown |= {"owner": who.get(space.owner_id, space.owner_id or ""), "members": people, "code_problems": problems}
        shown |= {"blocked": [dict(block=b, at=common.when(b.blocked_at)) for b in blocked], "more": more_blocked}
        shown |= {"created": common.when(space.created_at), "updated": common.when(space.updated_at)}
        shown |= {"space_type": space.space_type or DEFAULT_SPACE_TYPE, "policy": common.policy_shown(space)}
    return common.render_page(request, model_admin, "change_form", status, **shown)
