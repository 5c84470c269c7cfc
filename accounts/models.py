"""Django's user with a random UUID key (ids go into DynamoDB keys: never reused) and when credentials changed."""

import uuid
from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models, transaction
from django.utils import timezone


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Django records neither a password change nor a deactivation: tokens issued before
    # this moment are refused (accounts.security), so changing a password signs out everywhere.
    credentials_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self._credentials_changed = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        new_password = getattr(self, "_credentials_changed", False) and not self._state.adding  # new users: no token
        self._credentials_changed = False
        if not (new_password or self._is_being_deactivated()):
            return super().save(*args, **kwargs)
        changed_at = self.credentials_changed_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "credentials_changed_at"}
        from accounts.security import revoke_tokens_issued_before

        with transaction.atomic():  # the change is undone if its revocation cannot be stored: never fails open
            super().save(*args, **kwargs)
            revoke_tokens_issued_before(str(self.id), changed_at)

    def _is_being_deactivated(self) -> bool:
        if self.is_active or self._state.adding:
            return False
        return type(self).objects.filter(pk=self.pk, is_active=True).exists()
