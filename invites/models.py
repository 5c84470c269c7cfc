"""The admin's handle on spaces (which live in DynamoDB): a model with no table, for the admin index entry,
the invite-code permissions and the content type that ``LogEntry`` records point at (object id: the space id)."""

from typing import Self

from django.db import models


class DynamoSpace(models.Model):
    class Meta:
        managed = False  # no table: nothing is ever stored through this model
        default_permissions = ()
        permissions = [
            ("view_invite_code", "Can view spaces and their invite codes"),
            ("change_invite_code", "Can regenerate and backfill invite codes"),
        ]
        verbose_name = "space"
        verbose_name_plural = "spaces"

    # Shown for the object in the admin log; set by ``log_subject``.
    display_name = "space"

    @classmethod
    def log_subject(cls, *, space_id: str, name: str | None) -> Self:
        """An unsaved stand-in for ``ModelAdmin.log_change`` (pk: the space id; "" stands for the whole table)."""
        subject = cls(pk=space_id)
        subject.display_name = name or space_id
        return subject

    def __str__(self) -> str:
        return self.display_name
