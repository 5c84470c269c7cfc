"""The admin's handle on spaces: a model with no table and no rows.

Spaces live in DynamoDB, not in the relational database. The Django admin
still needs a model to hang three things on: the "Spaces" entry on the admin
index, the permissions that guard the invite-code pages, and the content type
that admin log entries (``LogEntry``) point at, with the space id as object id.
"""

from __future__ import annotations

from django.db import models


class DynamoSpace(models.Model):
    """A space as the admin sees it; the rows are in DynamoDB (``spaces.models.Space``)."""

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
    def log_subject(cls, *, space_id: str, name: str | None) -> DynamoSpace:
        """An unsaved stand-in for a space, for ``ModelAdmin.log_change``: its pk is the space id.

        ``space_id=""`` stands for the whole table (an entry about no one space).
        """
        subject = cls(pk=space_id)
        subject.display_name = name or space_id
        return subject

    def __str__(self) -> str:
        return self.display_name
