"""The "Spaces" entry of the admin: spaces are DynamoDB items, so every page is ours.

``DynamoSpace`` has no table; this ``ModelAdmin`` replaces the ORM-backed
views with those in :mod:`invites.admin_views` (same URL names, so the admin
index, "Recent actions" and breadcrumbs link to them) and states who may do
what: staff with ``invites.view_invite_code`` read, staff with
``invites.change_invite_code`` also press the buttons; superusers have both.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, path

from invites import admin_views
from invites.models import DynamoSpace

VIEW_PERMISSION = "invites.view_invite_code"
CHANGE_PERMISSION = "invites.change_invite_code"


@admin.register(DynamoSpace)
class SpaceAdmin(admin.ModelAdmin):
    list_per_page = settings.ADMIN_SPACES_PER_PAGE

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
            path("", wrap(admin_views.space_list), name=f"{prefix}_changelist"),
            path("backfill/", wrap(admin_views.backfill), name=f"{prefix}_backfill"),
            path("audit/", wrap(admin_views.audit), name=f"{prefix}_audit"),
            path("<str:space_id>/regenerate/", wrap(admin_views.regenerate), name=f"{prefix}_regenerate"),
            path("<str:space_id>/change/", wrap(admin_views.space_detail), name=f"{prefix}_change"),
        ]
