"""The list's bulk actions: Django admin actions, run on the selected space ids.

``SpaceAdmin.actions`` declares them, so Django's ``get_actions`` and
``get_action_choices`` list them (only for users with the change
permission). Spaces are not in the database, so an action receives the
selected space ids instead of a queryset; like a Django action, it returns
a response (a confirmation page) or None (back to the list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from invites import selectors
from invites.admin.common import (
    DYNAMO_FAILURES,
    SOURCE,
    log_code_changes,
    names,
    page_context,
    plural,
    report_dynamo_failure,
    require_change,
    space_label,
)
from invites.bulk import BulkOutcome, invite_codes_add_missing, invite_codes_regenerate_many
from spaces.ids import is_valid_space_id

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin


def run_action(request: HttpRequest, model_admin: SpaceAdmin) -> HttpResponse:
    """A POST to the list: run the chosen action on the selected spaces (Django's ``response_action``)."""
    require_change(request, model_admin)
    back_to_list = HttpResponseRedirect(request.get_full_path())
    actions = model_admin.get_actions(request)
    action = request.POST.get("action", "")
    selected = [space_id for space_id in request.POST.getlist("_selected_action") if is_valid_space_id(space_id)]
    if action not in actions:
        messages.warning(request, "No action selected.")
        return back_to_list
    if not selected:
        messages.warning(
            request, "Items must be selected in order to perform actions on them. No items have been changed."
        )
        return back_to_list
    func, _name, _description = actions[action]
    try:
        response = func(model_admin, request, selected)
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
        return back_to_list
    return response or back_to_list


@admin.action(description="Add invite codes to selected spaces that have none", permissions=["change"])
def add_missing_invite_codes(model_admin: SpaceAdmin, request: HttpRequest, space_ids: list[str]) -> None:
    outcome = invite_codes_add_missing(space_ids=space_ids, actor_id=str(request.user.pk), source=SOURCE)
    _report(request, model_admin, outcome, verb="Added invite codes to")


@admin.action(description="Regenerate invite codes for selected spaces", permissions=["change"])
def regenerate_invite_codes(model_admin: SpaceAdmin, request: HttpRequest, space_ids: list[str]) -> HttpResponse | None:
    """First a confirmation page with the current codes; confirmed, each space whose code is still the one shown."""
    if request.POST.get("post") != "yes":
        return _confirmation(request, model_admin, space_ids)
    expected = {
        space_id: request.POST.get(f"expected_code.{space_id}") or None
        for space_id in space_ids
        if f"expected_code.{space_id}" in request.POST
    }
    outcome = invite_codes_regenerate_many(
        space_ids=space_ids, expected_codes=expected, actor_id=str(request.user.pk), source=SOURCE
    )
    _report(request, model_admin, outcome, verb="Regenerated the invite codes of")
    return None


def _confirmation(request: HttpRequest, model_admin: SpaceAdmin, space_ids: list[str]) -> HttpResponse:
    found = selectors.spaces_for_ids(space_ids=space_ids)
    spaces = [found[space_id] for space_id in space_ids if space_id in found]
    if not spaces:
        messages.error(request, "None of the selected spaces exists any more.")
        return HttpResponseRedirect(request.get_full_path())
    context = page_context(
        request,
        model_admin,
        title="Regenerate invite codes?",
        spaces=spaces,
        with_code=sum(1 for space in spaces if space.invite_code),
        action=regenerate_invite_codes.__name__,
    )
    return render(request, "admin/invites/dynamospace/bulk_regenerate_confirmation.html", context)


def _report(request: HttpRequest, model_admin: SpaceAdmin, outcome: BulkOutcome, *, verb: str) -> None:
    """The admin log, then one message each for what changed, what was left alone and what failed."""
    log_code_changes(request, model_admin, outcome.changed)
    if outcome.changed:
        changed = names(space_label(space) for space, _change in outcome.changed)
        messages.success(request, f"{verb} {plural(len(outcome.changed), 'space')}: {changed}.")
    if outcome.left_alone:
        details = names(f"{space_label(space)}: {reason}" for space, reason in outcome.left_alone)
        messages.info(request, f"Left {plural(len(outcome.left_alone), 'space')} unchanged ({details}).")
    if outcome.failed:
        details = names(f"{f.name or f.space_id} ({f.space_id}): {f.error}" for f in outcome.failed)
        messages.error(request, f"Failed for {plural(len(outcome.failed), 'space')}: {details}.")
    if not (outcome.changed or outcome.left_alone or outcome.failed):
        messages.info(request, "Nothing to do.")
