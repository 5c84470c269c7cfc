from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from accounts.exceptions import UserDeletionBlocked
from accounts.forms import GuardedAdminAuthenticationForm
from accounts.models import User

admin.site.login_form = GuardedAdminAuthenticationForm


@admin.register(User)
class AccountUserAdmin(UserAdmin):  # type: ignore[type-arg]  # UserAdmin[User] fails at run time (not generic)
    """Django's user admin; a deletion that cannot remove the user's memberships is refused with a message."""

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        try:
            # A savepoint: the admin's own transaction stays usable when the deletion is refused.
            with transaction.atomic():
                super().delete_model(request, obj)
        except UserDeletionBlocked as exc:
            request._deletion_blocked = True  # type: ignore[attr-defined]  # read by response_delete
            self.message_user(request, f"{obj} was not deleted: {exc}", messages.ERROR)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for user in queryset:
            self.delete_model(request, user)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id: Any) -> HttpResponse:
        if getattr(request, "_deletion_blocked", False):
            return HttpResponseRedirect(request.path.removesuffix("delete/"))
        return super().response_delete(request, obj_display, obj_id)
