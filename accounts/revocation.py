"""Access tokens issued before a user's credentials changed (or deletion) stop working: one shared-cache read,
kept as long as an access token lives. Refresh tokens are checked against the database (api.auth)."""

from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

KEY_PREFIX = "tokens-revoked-before:"


def revoke_tokens_issued_before(user_id: str, moment: datetime) -> None:
    # As long as a token issued just before it could live, with a margin for clock skew.
    lifetime = cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]).total_seconds() + 60
    cache.set(f"{KEY_PREFIX}{user_id}", moment.timestamp(), timeout=int(lifetime))


def tokens_revoked_before(user_id: str) -> float | None:
    """The moment before which the user's access tokens no longer count, if one is recent."""
    value = cache.get(f"{KEY_PREFIX}{user_id}")
    return float(value) if value is not None else None


@receiver(post_delete, sender="accounts.User", dispatch_uid="accounts-revoke-deleted")
def revoke_tokens_of_deleted_user(sender: Any, instance: Any, **_: Any) -> None:
    revoke_tokens_issued_before(str(instance.pk), timezone.now())
