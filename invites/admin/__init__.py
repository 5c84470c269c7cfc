"""The "Spaces" entry of the admin: spaces are DynamoDB items, so every page is ours.

``DynamoSpace`` has no table; :class:`SpaceAdmin` replaces the ORM-backed
views with those of this package (same URL names, so the admin index,
"Recent actions" and breadcrumbs link to them) and states who may do what:
staff with ``invites.view_invite_code`` read, staff with
``invites.change_invite_code`` also press the buttons; superusers have both.

* :mod:`.changelist`: the space list (search, filter, cursor paging).
* :mod:`.actions`: the list's bulk actions.
* :mod:`.detail`: one space, and its regenerate button with the confirmation.
* :mod:`.maintenance`: the backfill and audit pages.
* :mod:`.common`: what they share (page context, permissions, messages, admin log).
* :mod:`.display`: how stored values are shown (dates, type, invite policy).

The site's own name and its "View site" link are set here too: this project's
admin is the spaces' admin.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse_lazy
from django.utils.functional import Promise

from invites.admin import actions, changelist, detail, maintenance
from invites.models import DynamoSpace

VIEW_PERMISSION = "invites.view_invite_code"
CHANGE_PERMISSION = "invites.change_invite_code"


def view_site_url(api_docs: str) -> Promise | None:
    """Where "View site" leads: the API's docs when they are served (``API_DOCS`` public or staff: the
    admin's staff see them either way), else nowhere (no link): the project has no home page."""
    return reverse_lazy("swagger-ui") if api_docs != "off" else None


admin.site.site_header = "Lifestyle Spaces administration"
admin.site.site_title = "Lifestyle Spaces admin"
admin.site.site_url = view_site_url(settings.API_DOCS)


@admin.register(DynamoSpace)
class SpaceAdmin(admin.ModelAdmin):
    list_per_page = settings.ADMIN_SPACES_PER_PAGE
    actions = [actions.add_missing_invite_codes, actions.regenerate_invite_codes]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and (user.has_perm(VIEW_PERMISSION) or user.has_perm(CHANGE_PERMISSION))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return user.is_active and user.is_staff and user.has_perm(CHANGE_PERMISSION)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # spaces are created by their owners through the API

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"

        def wrap(view: Any) -> Any:
            return self.admin_site.admin_view(partial(view, model_admin=self))

        return [
            path("", wrap(changelist.space_list), name=f"{prefix}_changelist"),
            path("backfill/", wrap(maintenance.backfill), name=f"{prefix}_backfill"),
            path("audit/", wrap(maintenance.audit), name=f"{prefix}_audit"),
            path("<str:space_id>/regenerate/", wrap(detail.regenerate), name=f"{prefix}_regenerate"),
            path("<str:space_id>/pause/", wrap(detail.pause), name=f"{prefix}_pause"),
            path("<str:space_id>/change/", wrap(detail.space_detail), name=f"{prefix}_change"),
        ]
