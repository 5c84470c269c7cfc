"""The "Spaces" entry of the admin: spaces are DynamoDB items, so every page is ours, under the usual URL names."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

from invites.admin import changelist, detail, maintenance, members
from invites.models import DynamoSpace

admin.site.site_header = "Lifestyle Spaces administration"
admin.site.site_title = "Lifestyle Spaces admin"


@admin.register(DynamoSpace)
class SpaceAdmin(admin.ModelAdmin):  # type: ignore[type-arg]  # ModelAdmin[DynamoSpace] fails at run time (not generic)
    list_per_page = settings.ADMIN_SPACES_PER_PAGE
    actions = [changelist.add_missing_invite_codes, changelist.regenerate_invite_codes]  # type: ignore[list-item]  # given space ids (run_action), not a QuerySet

    # The admin site lets only active staff in; inactive users have no permission.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("invites.view_invite_code") or self.has_change_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("invites.change_invite_code")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # owners create spaces through the API

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        def route(address: str, view: Callable[..., HttpResponse], name: str) -> URLPattern:
            def checked(request: HttpRequest, **kwargs: str) -> HttpResponse:
                may = self.has_change_permission if request.method == "POST" else self.has_view_permission
                if not may(request):
                    raise PermissionDenied
                return view(request, model_admin=self, **kwargs)

            return path(address, self.admin_site.admin_view(checked), name=f"invites_dynamospace_{name}")

        return [
            route("", changelist.space_list, "changelist"),
            route("backfill/", maintenance.backfill, "backfill"),
            route("audit/", maintenance.audit, "audit"),
            route("<str:space_id>/regenerate/", detail.regenerate, "regenerate"),
            route("<str:space_id>/pause/", detail.pause, "pause"),
            route("<str:space_id>/change/", detail.space_detail, "change"),
            route("<str:space_id>/members/<str:user_id>/remove/", members.member_remove, "member_remove"),
            route("<str:space_id>/blocks/<str:user_id>/unblock/", members.unblock, "unblock"),
            route("<str:space_id>/cleanup/", members.cleanup, "cleanup"),
        ]
