"""What the views read from a request: the caller, a space id in the path, the list's signed cursor."""

from django.core import signing
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from lifestyle_spaces.api_schema import error
from spaces.access import space_role_of
from spaces.ids import SPACE_ID_RE, is_valid_space_id
from spaces.models import Space
from spaces.selectors import space_with_membership

CURSOR_MAX_LENGTH = 512
_SALT = "spaces.api.list-cursor"  # a former module's name; changing it would void issued cursors


class InvalidSpaceId(APIException):
    status_code = 400
    default_detail = "Invalid space id"
    default_code = "invalid_space_id"


def caller_id(request: Request) -> str:
    """The user id from the token's ``user_id`` claim (the UUID in ``MEMBER#`` keys)."""
    return str(request.user.id)


def space_for_caller(request: Request, space_id: str) -> tuple[Space, str | None, str]:
    """The space read with the caller's membership in one round trip, the caller's role, and the caller's id."""
    if not is_valid_space_id(space_id):  # a JSON 400: no key is built from a malformed id
        raise InvalidSpaceId()
    user_id = caller_id(request)
    space, membership = space_with_membership(space_id=space_id, user_id=user_id)
    return space, space_role_of(space=space, membership=membership, user_id=user_id), user_id


def _signer(user_id: str) -> signing.Signer:
    # Salted with the caller's id: a cursor issued to another user is refused like a forged one.
    return signing.Signer(salt=f"{_SALT}:{user_id}")


def cursor_encode(*, user_id: str, after_space_id: str) -> str:
    return _signer(user_id).sign_object({"after": after_space_id})


def cursor_decode(*, user_id: str, cursor: str) -> str:
    """The space id a cursor continues after; a 400 for anything but our own cursor."""
    try:
        payload = _signer(user_id).unsign_object(cursor) if len(cursor) <= CURSOR_MAX_LENGTH else None
    except (signing.BadSignature, ValueError, UnicodeError):
        payload = None
    after = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(after, str) or not after:
        raise ValidationError({"cursor": ["Invalid cursor."]})
    return after


SPACE_ID_PARAMETER = OpenApiParameter(
    "space_id",
    str,
    OpenApiParameter.PATH,
    pattern=f"^{SPACE_ID_RE.pattern}$",
    description="The space's id (UUIDv7 for spaces created here).",
)
NOT_FOUND = error("No space has this id.")
