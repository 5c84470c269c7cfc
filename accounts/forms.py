"""Sign-in forms that refuse to check a password while its username or address is locked out."""

from typing import Any, cast

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from accounts.login_guard import LOCKED_MESSAGE, client_address, lockout_seconds_left


class _LockoutCheck(forms.Form):
    request: Any

    def clean(self) -> dict[str, Any]:
        if self.request is not None:
            username = str(self.data.get("username", ""))
            left = lockout_seconds_left(username=username, address=client_address(self.request))
            if left:
                raise forms.ValidationError(LOCKED_MESSAGE.format(minutes=max(1, round(left / 60))), code="locked_out")
        return cast(dict[str, Any], super().clean())  # Django's clean returns cleaned_data


class GuardedAuthenticationForm(_LockoutCheck, AuthenticationForm):
    pass


class GuardedAdminAuthenticationForm(_LockoutCheck, AdminAuthenticationForm):
    pass
