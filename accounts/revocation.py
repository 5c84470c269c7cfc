"""Tokens issued before a user's credentials changed stop working at once, at the cost of one cache read.

Access tokens are stateless (the API never reads the relational database);
to end them before they expire, the moment a user's password changed, the
user was deactivated or deleted is kept in the shared cache (``CACHE_URL``,
Redis in production) for as long as an access token lives. The API's
authentication reads that one key per request and refuses a token issued
before it; refresh tokens are checked against ``User.credentials_changed_at``
in the database when they are used, which is rare. docs/api.md has the
trade-off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

KEY_PREFIX = "tokens-revoked-before:"


def _key(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}"


def revoke_tokens_issued_before(user_id: str, moment: datetime) -> None:
    # Kept as long as a token issued just before it could live, with a margin for clock skew.
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() + 60
    cache.set(_key(user_id), moment.timestamp(), timeout=int(lifetime))


def tokens_revoked_before(user_id: str) -> float | None:
    """The moment before which the user's access tokens no longer count, if one is recent."""
    value = cache.get(_key(user_id))
    return float(value) if value is not None else None


def revoke_tokens_of_deleted_user(sender: Any, instance: Any, **_: Any) -> None:
    """``post_delete`` of the user model: the deleted user's tokens stop working at once."""
    revoke_tokens_issued_before(str(instance.pk), timezone.now())
