"""Opaque cursors for ``GET /api/spaces``.

A cursor names the last space of the previous page. It is signed (HMAC with
the secret key, salted with the caller's id), so a cursor that was altered,
made up, or issued to another user is refused with a 400 rather than
followed: no key is built from text the client chose.
"""

from __future__ import annotations

from django.core import signing
from rest_framework.exceptions import ValidationError

CURSOR_MAX_LENGTH = 512
_SALT = "spaces.api.list-cursor"  # the module's former name; changing it would void issued cursors


def _signer(user_id: str) -> signing.Signer:
    return signing.Signer(salt=f"{_SALT}:{user_id}")


def cursor_encode(*, user_id: str, after_space_id: str) -> str:
    return _signer(user_id).sign_object({"after": after_space_id})


def cursor_decode(*, user_id: str, cursor: str) -> str:
    """The space id a cursor continues after; raises a 400 for anything but our own cursor."""
    invalid = ValidationError({"cursor": ["Invalid cursor."]})
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise invalid
    try:
        payload = _signer(user_id).unsign_object(cursor)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise invalid from None
    after = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(after, str) or not after:
        raise invalid
    return after
