"""OpenAPI pieces shared by the API's views: error bodies and the schema hooks."""

from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField(help_text="A message safe to show a user.")


class ValidationErrorSerializer(ErrorSerializer):
    errors = serializers.DictField(  # type: ignore[assignment]  # the body's key; shadows Serializer.errors
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field name -> messages; present when the body or query failed validation.",
    )


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


BAD_INPUT = OpenApiResponse(
    ValidationErrorSerializer,
    description="The body is not JSON, a field has the wrong type or value (`errors`), or an id is malformed.",
)
UNAUTHENTICATED = error("Missing, malformed, expired or tampered access token.")
THROTTLED = error("Too many requests from this user; retry after `Retry-After` seconds.")
UNAVAILABLE = error("DynamoDB cannot be reached or is overloaded; retry after `Retry-After` seconds.")


def responses(described: dict[int, Any]) -> dict[int, Any]:
    """``described`` and the 400 and 401 every endpoint may answer, in status order as the schema lists them."""
    return dict(sorted({400: BAD_INPUT, 401: UNAUTHENTICATED, **described}.items()))


def retry_after(*statuses: int) -> OpenApiParameter:
    text = "Seconds to wait before retrying."
    return OpenApiParameter("Retry-After", OpenApiTypes.INT, "header", description=text, response=list(statuses))


def strip_trailing_slashes(endpoints: list[tuple[Any, ...]], **_: Any) -> list[tuple[Any, ...]]:
    """``PREPROCESSING_HOOKS``: document ``/api/spaces/{id}`` (the guide's form), not ``/api/spaces/{id}/``."""
    return [(path.rstrip("/") if path != "/" else path, *rest) for path, *rest in endpoints]


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Trade for a new access token at /api/auth/token/refresh.")


class AccessTokenSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField(required=False, help_text="Only when refresh tokens rotate.")


class RevocableJWTScheme(SimpleJWTScheme):  # documented as simplejwt's bearer token
    target_class = "api.authentication.RevocableJWTAuthentication"
