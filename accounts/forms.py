"""Sign-in forms that reserve an attempt (accounts.security) before Django checks the password."""

from typing import Any, cast

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from accounts.security import password_check

LOCKED_MESSAGE = "Too many failed sign-in attempts. Try again in {minutes} minute(s)."


class _LockoutCheck(forms.Form):
    request: Any

    def clean(self) -> dict[str, Any]:
        if self.request is None:  # not a request (a shell): nothing to limit
            return cast(dict[str, Any], super().clean())  # Django's clean returns cleaned_data
        with password_check(username=str(self.data.get("username", "")), request=self.request) as locked_for:
            if locked_for:
                message = LOCKED_MESSAGE.format(minutes=max(1, round(locked_for / 60)))
                raise forms.ValidationError(message, code="locked_out")
            return cast(dict[str, Any], super().clean())


class GuardedAuthenticationForm(_LockoutCheck, AuthenticationForm):
    pass


class GuardedAdminAuthenticationForm(_LockoutCheck, AdminAuthenticationForm):
    pass
