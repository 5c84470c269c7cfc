"""What every view of the API reads from a request: the caller, and a space id in the path."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.request import Request

from lifestyle_spaces.api_schema import error
from spaces.ids import SPACE_ID_RE, is_valid_space_id


class InvalidSpaceId(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid space id"
    default_code = "invalid_space_id"


def caller_id(request: Request) -> str:
    """The user id from the token's ``user_id`` claim (the UUID in ``MEMBER#`` keys)."""
    return str(request.user.id)


def valid_space_id(space_id: str) -> str:
    """The id from the path, or a JSON 400: no key is built from a malformed id."""
    if not is_valid_space_id(space_id):
        raise InvalidSpaceId()
    return space_id


SPACE_ID_PARAMETER = OpenApiParameter(
    "space_id",
    str,
    OpenApiParameter.PATH,
    pattern=f"^{SPACE_ID_RE.pattern}$",
    description="The space's id (UUIDv7 for spaces created here).",
)
NOT_FOUND = error("No space has this id.")
