"""What the views read from a request: the caller, a space id in the path, the list's signed cursor."""

from django.core import signing
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from invites import codes
from lifestyle_spaces.api_schema import error
from spaces.access import space_role_of
from spaces.exceptions import InvalidInviteCode
from spaces.ids import SPACE_ID_RE, is_valid_space_id
from spaces.members import Actor
from spaces.models import Membership, Space
from spaces.selectors import space_with_membership, space_with_memberships

CURSOR_MAX_LENGTH = 512
SPACE_ID_TEXT = "The space's id (UUIDv7 for spaces created here)."
_SALT = "spaces.api.list-cursor"  # a former module's name; changing it would void issued cursors


class InvalidSpaceId(APIException):
    status_code = 400
    default_detail = "Invalid space id"
    default_code = "invalid_space_id"


class InvalidUserId(InvalidSpaceId):
    default_detail = "Invalid user id"
    default_code = "invalid_user_id"


def caller_id(request: Request) -> str:
    """The user id from the token's ``user_id`` claim (the UUID in ``MEMBER#`` keys)."""
    return str(request.user.id)


def typed_code(typed: str) -> str:
    """A code as a user typed it, normalised; a malformed one is :class:`InvalidInviteCode`."""
    try:
        return codes.normalize_typed_code(typed)
    except codes.MalformedCode:
        raise InvalidInviteCode() from None


def space_for_caller(request: Request, space_id: str) -> tuple[Space, str | None, str]:
    """The space read with the caller's membership in one round trip, the caller's role, and the caller's id."""
    if not is_valid_space_id(space_id):  # a JSON 400: no key is built from a malformed id
        raise InvalidSpaceId()
    user_id = caller_id(request)
    space, membership = space_with_membership(space_id=space_id, user_id=user_id)
    return space, space_role_of(space=space, membership=membership, user_id=user_id), user_id


def people_for_caller(request: Request, space_id: str, user_id: str) -> tuple[Space, Actor, str, Membership | None]:
    """The space, the caller, ``user_id`` (``me``: the caller) and their membership, all in one round trip."""
    me = caller_id(request)
    user_id = me if user_id == "me" else user_id
    if not is_valid_space_id(space_id):
        raise InvalidSpaceId()
    if not is_valid_space_id(user_id):  # user ids are held to the shape of space ids: no key from anything else
        raise InvalidUserId()
    space, found = space_with_memberships(space_id=space_id, user_ids=[me, user_id])
    return space, Actor(me, found.get(me)), user_id, found.get(user_id)


def _signer(user_id: str, scope: str) -> signing.Signer:
    # Salted with the caller's id and what is listed: another user's cursor, or another list's, is as if forged.
    return signing.Signer(salt=f"{_SALT}:{user_id}{scope}")


def cursor_encode(*, user_id: str, after: str, scope: str = "") -> str:
    return _signer(user_id, scope).sign_object({"after": after})


def cursor_decode(*, user_id: str, cursor: str, scope: str = "") -> str:
    """The id a cursor continues after; a 400 for anything but our own cursor."""
    try:
        payload = _signer(user_id, scope).unsign_object(cursor) if len(cursor) <= CURSOR_MAX_LENGTH else None
    except (signing.BadSignature, ValueError, UnicodeError):
        payload = None
    after = payload.get("after") if isinstance(payload, dict) else None
    if not isinstance(after, str) or not after:
        raise ValidationError({"cursor": ["Invalid cursor."]})
    return after


SPACE_ID_PARAMETER = OpenApiParameter(
    "space_id", str, OpenApiParameter.PATH, pattern=f"^{SPACE_ID_RE.pattern}$", description=SPACE_ID_TEXT
)
NOT_FOUND = error("No space has this id.")
