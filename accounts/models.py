"""Django's user with a random UUID key (ids go into DynamoDB keys: never reused) and when credentials changed."""

import uuid
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Django records neither a password change nor a deactivation: tokens issued before
    # this moment are refused (accounts.revocation), so changing a password signs out everywhere.
    credentials_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self._credentials_changed = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        changed = getattr(self, "_credentials_changed", False) or self._is_being_deactivated()
        if changed:
            changed_at = self.credentials_changed_at = timezone.now()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "credentials_changed_at"}
        super().save(*args, **kwargs)
        if changed:
            from accounts.revocation import revoke_tokens_issued_before

            self._credentials_changed = False
            revoke_tokens_issued_before(str(self.id), changed_at)

    def _is_being_deactivated(self) -> bool:
        if self.is_active or self._state.adding:
            return False
        return type(self).objects.filter(pk=self.pk, is_active=True).exists()
