"""Token endpoints: simplejwt's views, documented, and refresh made safe for deleted users.

These are the only API views that read the relational database (to check a
password, or that the refreshed user still exists and is active).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from lifestyle_spaces.api_schema import BAD_INPUT, AccessTokenSerializer, TokenPairSerializer, error

BAD_CREDENTIALS = error("Wrong credentials, an inactive or deleted user, or an invalid or expired refresh token.")


@extend_schema_serializer(component_name="TokenRefresh")
class RefreshForExistingUserSerializer(TokenRefreshSerializer):
    """A refresh token, traded for a new access token."""

    # simplejwt looks the user up with ``.get()``: a refresh token of a deleted
    # user would be a 500; it is a 401 like an inactive user's.

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            return super().validate(attrs)
        except (ObjectDoesNotExist, DjangoValidationError, ValueError):
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from None


@extend_schema_view(
    post=extend_schema(
        summary="Log in: an access and a refresh token",
        responses={200: TokenPairSerializer, 400: BAD_INPUT, 401: BAD_CREDENTIALS},
    )
)
class TokenObtainView(TokenObtainPairView):
    pass


@extend_schema_view(
    post=extend_schema(
        summary="A new access token for a refresh token",
        responses={200: AccessTokenSerializer, 400: BAD_INPUT, 401: BAD_CREDENTIALS},
    )
)
class TokenRefreshAccessView(TokenRefreshView):
    serializer_class = RefreshForExistingUserSerializer
