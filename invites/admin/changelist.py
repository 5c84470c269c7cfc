"""The space list: Django's change list (search, filter, bulk actions on space ids) over rows read from DynamoDB."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from pynamodb.exceptions import PynamoDBException

from invites import selectors
from invites.admin import common
from invites.assignment import invite_code_assign_if_missing
from invites.models import DynamoSpace
from invites.policies import now_epoch
from invites.services import SpaceOutcome, Status, invite_code_regenerate
from spaces.dynamodb import short_reason
from spaces.exceptions import DomainError, DynamoUnavailable, SpaceNotFound
from spaces.ids import is_valid_space_id
from spaces.models import Space
from spaces.selectors import spaces_by_id

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


def space_list(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    if request.method == "POST":
        return run_action(request, model_admin)
    query, has_code, after = request.GET.get("q", "").strip(), request.GET.get("has_code", ""), request.GET.get("after")
    if after and selectors.key_from_cursor(after) is None:
        messages.error(request, "That page cursor is not valid; showing the first page.")
        after = None
    spaces, note, page, failed = list[Space](), "", selectors.SpacePage([], None), False
    try:
        if query:
            spaces, note = selectors.space_search(query=query)
        else:
            wanted = {"yes": True, "no": False}.get(has_code)
            page = selectors.space_page(page_size=model_admin.list_per_page, cursor=after, has_code=wanted)
            spaces = page.spaces
    except common.DYNAMO_FAILURES as exc:
        common.report_failure(request, exc)
        failed = True
    owners, now = common.usernames(space.owner_id for space in spaces), now_epoch()
    rows = [
        {"space": s, "owner": owners.get(s.owner_id, s.owner_id or ""), "created": common.when(s.created_at)}
        | {"policy": common.policy_shown(s, now)}
        for s in spaces
    ]
    action_form = model_admin.action_form(auto_id=None)
    action_form.fields["action"].choices = model_admin.get_action_choices(request)
    # What Django's change-list templates read from their ``cl`` (the filter and our tables are in ours).
    cl = dict(opts=DynamoSpace._meta, query=query, result_list=rows, result_count=len(rows), has_filters=True)
    cl |= dict(search_fields=("id",), search_help_text="Exact space id, or an invite code.")
    title = "Select space to change" if model_admin.has_change_permission(request) else "Select space to view"
    shown = {"cl": cl, "media": model_admin.media, "action_form": action_form, "search_note": note, "title": title}
    shown |= {"selection_note": f"0 of {len(rows)} selected", "has_code": has_code, "short_page": page.short}
    shown |= _paging_links(has_code, after, request.GET.get("back"), page.next_cursor) | {"dynamo_failed": failed}
    return common.render_page(request, model_admin, "change_list", **shown)


def _paging_links(has_code: str, after: str | None, back: str | None, next_cursor: str | None) -> dict[str, Any]:
    """Next and previous pages' query strings, the filter kept; ``back``: the earlier pages' cursors but the first."""
    trail = back.split(",") if after and back else []  # a forged one is refused when used
    forward = ",".join([*trail, after][-40:]) if after else None  # "Previous" for 40 pages back; the URL stays short
    previous = {"after": trail[-1], "back": ",".join(trail[:-1]) or None} if trail else {}

    def link(**params: str | None) -> str:
        params["has_code"] = has_code or None
        return "?" + urlencode({name: value for name, value in params.items() if value is not None})

    return {
        "next_url": link(after=next_cursor, back=forward) if next_cursor else None,
        "previous_url": link(**previous) if after else None,
    }


def run_action(request: HttpRequest, model_admin: SpaceAdmin) -> HttpResponse:
    """A POST to the list: run the chosen action on the selected spaces (Django's ``response_action``)."""
    back_to_list = HttpResponseRedirect(request.get_full_path())
    chosen = model_admin.get_actions(request).get(request.POST.get("action", ""))
    selected = [space_id for space_id in request.POST.getlist("_selected_action") if is_valid_space_id(space_id)]
    if chosen is None:
        messages.warning(request, "No action selected.")
    elif not selected:
        nothing = "Items must be selected in order to perform actions on them. No items have been changed."
        messages.warning(request, nothing)
    else:
        try:
            return chosen[0](model_admin, request, list(dict.fromkeys(selected))) or back_to_list  # type: ignore[return-value]  # django-stubs: an action returns str
        except common.DYNAMO_FAILURES as exc:
            common.report_failure(request, exc)
    return back_to_list


def _read(space_ids: list[str]) -> tuple[dict[str, Space], list[SpaceOutcome]]:
    """The selected spaces, strongly consistent (they are about to be written), and a failure per one gone."""
    found = spaces_by_id(space_ids, consistent=True)
    gone = [SpaceOutcome(i, Status.FAILED, error=str(SpaceNotFound(i))) for i in space_ids if i not in found]
    return {i: found[i] for i in space_ids if i in found}, gone


def _named(outcomes: list[SpaceOutcome], spaces: dict[str, Space]) -> list[SpaceOutcome]:  # the engine names none
    return [replace(o, name=spaces[o.space_id].name or "") if o.space_id in spaces else o for o in outcomes]


@admin.action(description="Add invite codes to selected spaces that have none", permissions=["change"])
def add_missing_invite_codes(model_admin: SpaceAdmin, request: HttpRequest, space_ids: list[str]) -> None:
    spaces, outcomes = _read(space_ids)
    outcomes += [SpaceOutcome(s.id, Status.SKIPPED, new_code=s.invite_code) for s in spaces.values() if s.invite_code]
    actor = str(request.user.pk)  # the engine writes only the spaces without a code
    outcomes += invite_code_assign_if_missing(spaces=list(spaces.values()), actor_id=actor, source=common.SOURCE)
    why = "it already has an invite code"
    common.report_outcomes(request, model_admin, _named(outcomes, spaces), "Added invite codes to", why)


@admin.action(description="Regenerate invite codes for selected spaces", permissions=["change"])
def regenerate_invite_codes(model_admin: SpaceAdmin, request: HttpRequest, space_ids: list[str]) -> HttpResponse | None:
    """First a confirmation with the current codes; confirmed, each space whose code is still the one shown."""
    spaces, outcomes = _read(space_ids)
    if request.POST.get("post") != "yes":
        if not spaces:
            messages.error(request, "None of the selected spaces exists any more.")
            return None
        shown = {"spaces": list(spaces.values()), "with_code": sum(1 for s in spaces.values() if s.invite_code)}
        return common.render_page(request, model_admin, "bulk_regenerate_confirmation", **shown)
    pending, who = list(spaces.values()), str(request.user.pk)
    for n, space in enumerate(pending):
        if request.POST.get(f"expected_code.{space.id}", space.invite_code or "") != (space.invite_code or ""):
            outcomes.append(SpaceOutcome(space.id, Status.SKIPPED, new_code=space.invite_code))
            continue
        try:
            outcomes.append(invite_code_regenerate(space_id=space.id, space=space, actor_id=who, source=common.SOURCE))
        except DynamoUnavailable as exc:  # the rest would each wait for a timeout
            outcomes.append(SpaceOutcome(space.id, Status.FAILED, error=short_reason(exc)))
            not_tried = "not attempted: DynamoDB cannot be reached"
            outcomes += [SpaceOutcome(other.id, Status.FAILED, error=not_tried) for other in pending[n + 1 :]]
            break
        except (DomainError, PynamoDBException) as exc:
            outcomes.append(SpaceOutcome(space.id, Status.FAILED, error=short_reason(exc)))
    changed = "its invite code changed after you confirmed"
    common.report_outcomes(request, model_admin, _named(outcomes, spaces), "Regenerated the invite codes of", changed)
    return None
