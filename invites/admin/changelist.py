"""The space list: Django's change list (search box, filter, actions) over rows read from DynamoDB.

``admin/change_list.html`` renders the page; what it reads from its ``cl``
outside the blocks ours replaces (the results table and the cursor
paginator) comes from :class:`SpaceChangeList`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.admin import helpers
from django.db.models.options import Options
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from invites import selectors
from invites.admin.actions import run_action
from invites.admin.common import (
    DYNAMO_FAILURES,
    page_context,
    report_dynamo_failure,
    require_view,
    url,
    usernames,
)
from invites.admin.display import Moment, PolicyDisplay
from invites.models import DynamoSpace
from invites.policies import now_epoch
from spaces.models import Space

if TYPE_CHECKING:
    from invites.admin import SpaceAdmin

HAS_CODE_CHOICES = {"yes": True, "no": False}
# Cursor trails longer than this are cut at the oldest end: "previous" still
# works for the last pages seen, and the URL stays short.
MAX_CURSOR_TRAIL = 40


def list_query(**params: str | None) -> str:
    return "?" + urlencode({name: value for name, value in params.items() if value is not None})


@dataclass(frozen=True)
class HasCodeFilter:
    """The "By has invite code" filter, in the shape Django's ``admin_list_filter`` tag renders."""

    selected: str  # "", "yes" or "no"
    template = "admin/filter.html"
    title = "has invite code"

    def choices(self, changelist: SpaceChangeList) -> Iterator[dict[str, Any]]:
        for value, display in (("", "All"), ("yes", "Yes"), ("no", "No")):
            query_string = list_query(has_code=value or None)
            yield {"selected": self.selected == value, "query_string": query_string, "display": display}


@dataclass(frozen=True)
class SpaceChangeList:
    """What Django's change-list templates read from ``cl``: breadcrumbs, search form, filters, actions."""

    opts: Options
    query: str
    result_list: list[dict[str, Any]]
    filter_specs: list[HasCodeFilter]
    has_active_filters: bool
    search_fields: tuple[str, ...] = ("id", "invite_code")
    search_help_text: str = "Exact space id, or an invite code."
    params: dict[str, str] = field(default_factory=dict)
    has_filters: bool = True
    clear_all_filters_qs: str = "?"
    is_facets_optional: bool = False
    add_facets: bool = False
    is_popup: bool = False
    show_full_result_count: bool = False
    formset: None = None
    date_hierarchy: None = None

    @property
    def result_count(self) -> int:
        return len(self.result_list)

    @property
    def full_result_count(self) -> int | None:
        # Django shows "N results (Show all)" when this differs from result_count:
        # while searching. The table's total is never counted (that is a Scan).
        return None if self.query else self.result_count


@dataclass
class _Listing:
    """One page of the list as read from DynamoDB, and where it sits in the walk."""

    query: str
    has_code: str
    after: str | None
    trail: list[str] | None
    spaces: list[Space] = field(default_factory=list)
    next_cursor: str | None = None
    short_page: bool = False
    search_note: str = ""
    failed: bool = False


def space_list(request: HttpRequest, *, model_admin: SpaceAdmin) -> HttpResponse:
    require_view(request, model_admin)
    if request.method == "POST":
        return run_action(request, model_admin)
    listing = _read(request, model_admin)
    rows = _rows(listing.spaces)
    may_change = model_admin.has_change_permission(request)
    next_url, previous_url = _paging_links(listing)
    context = page_context(
        request,
        model_admin,
        title="Select space to change" if may_change else "Select space to view",
        subtitle=None,
        cl=SpaceChangeList(
            opts=DynamoSpace._meta,
            query=listing.query,
            result_list=rows,
            filter_specs=[HasCodeFilter(listing.has_code)],
            has_active_filters=bool(listing.has_code),
        ),
        media=model_admin.media,
        action_form=_action_form(request, model_admin) if may_change else None,
        actions_on_top=model_admin.actions_on_top,
        actions_on_bottom=model_admin.actions_on_bottom,
        actions_selection_counter=True,
        selection_note=f"0 of {len(rows)} selected",
        rows=rows,
        search_note=listing.search_note,
        next_url=next_url,
        previous_url=previous_url,
        short_page=listing.short_page,
        dynamo_failed=listing.failed,
        list_url=request.get_full_path(),
        backfill_url=url("backfill"),
        audit_url=url("audit"),
    )
    return render(request, "admin/invites/dynamospace/change_list.html", context)


def _read(request: HttpRequest, model_admin: SpaceAdmin) -> _Listing:
    """The search results, or one page of the (filtered) list; a DynamoDB failure is a message."""
    after = request.GET.get("after") or None
    if after is not None and selectors.key_from_cursor(after) is None:
        messages.error(request, "That page cursor is not valid; showing the first page.")
        after = None
    has_code = request.GET.get("has_code", "")
    listing = _Listing(
        query=request.GET.get("q", "").strip(),
        has_code=has_code,
        after=after,
        trail=_cursor_trail(request.GET.get("back")) if after else None,
    )
    try:
        if listing.query:
            found = selectors.space_search(query=listing.query)
            listing.spaces, listing.search_note = found.spaces, found.note
        else:
            page = selectors.space_page(
                page_size=model_admin.list_per_page, cursor=after, has_code=HAS_CODE_CHOICES.get(has_code)
            )
            listing.spaces, listing.next_cursor, listing.short_page = page.spaces, page.next_cursor, page.short
    except DYNAMO_FAILURES as exc:
        report_dynamo_failure(request, exc)
        listing.failed = True
    return listing


def _cursor_trail(raw: str | None) -> list[str] | None:
    """The ``back`` parameter: ``after`` cursors of earlier pages, oldest first ("" = first page)."""
    if raw is None:
        return None
    return [cursor for cursor in raw.split(",") if cursor == "" or selectors.key_from_cursor(cursor)]


def _paging_links(listing: _Listing) -> tuple[str | None, str | None]:
    """The query strings of the next and the previous page; the filter goes along."""
    kept = {"has_code": listing.has_code or None}
    next_url = previous_url = None
    if listing.next_cursor:
        next_trail = [*(listing.trail or []), listing.after or ""][-MAX_CURSOR_TRAIL:]
        next_url = list_query(**kept, after=listing.next_cursor, back=",".join(next_trail))
    if listing.after:
        earlier = listing.trail or [""]
        previous_after = earlier[-1] or None
        previous_back = ",".join(earlier[:-1]) if previous_after else None
        previous_url = list_query(**kept, after=previous_after, back=previous_back)
    return next_url, previous_url


def _rows(spaces: list[Space]) -> list[dict[str, Any]]:
    owners = usernames(space.owner_id for space in spaces)
    now = now_epoch()
    return [
        {
            "space": space,
            "owner": owners.get(space.owner_id or "", space.owner_id or ""),
            "created": Moment.of(space.created_at),
            "policy": PolicyDisplay.of(space, now),
            "detail_url": url("change", space.id),
            "regenerate_url": url("regenerate", space.id),
        }
        for space in spaces
    ]


def _action_form(request: HttpRequest, model_admin: SpaceAdmin) -> helpers.ActionForm:
    """Django's action form, offering the actions ``SpaceAdmin.actions`` declares and the user may run."""
    form = model_admin.action_form(auto_id=None)
    form.fields["action"].choices = model_admin.get_action_choices(request)
    return form
