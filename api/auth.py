"""Tokens: simplejwt's views, refused while locked out (login) or issued before a credentials change (refresh)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.login_guard import client_address, lockout_seconds_left
from api.authentication import REVOKED, issued_before
from lifestyle_spaces.api_schema import BAD_INPUT, THROTTLED, AccessTokenSerializer, TokenPairSerializer, error

BAD_CREDENTIALS = error("Wrong credentials, an inactive or deleted user, or an invalid or expired refresh token.")
LOCKED_OUT = "Too many failed sign-in attempts; try again later"


@extend_schema_serializer(component_name="TokenRefresh")
class RefreshForCurrentCredentialsSerializer(TokenRefreshSerializer):
    """A refresh token, traded for a new access token and a new refresh token."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            refresh = RefreshToken(attrs["refresh"])
        except TokenError as exc:
            raise InvalidToken(exc.args[0]) from exc
        try:
            user = get_user_model().objects.get(pk=refresh.get("user_id"))
        except (ObjectDoesNotExist, DjangoValidationError, ValueError):
            # simplejwt's .get() would be a 500 for a deleted user; it is a 401 like an inactive one.
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from None
        changed = user.credentials_changed_at
        if issued_before(refresh, changed.timestamp() if changed else None):
            raise AuthenticationFailed(REVOKED, code="token_revoked")
        return super().validate(attrs)


class TokenObtainView(TokenObtainPairView):
    @extend_schema(
        summary="Log in: an access and a refresh token",
        description="Failed attempts are limited per username and per client address: past the limit, "
        "429 with Retry-After, whatever the password.",
        responses={200: TokenPairSerializer, 400: BAD_INPUT, 401: BAD_CREDENTIALS, 429: THROTTLED},
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        name = request.data.get("username") if isinstance(request.data, dict) else None
        left = lockout_seconds_left(username=name if isinstance(name, str) else "", address=client_address(request))
        if left:
            return Response({"detail": LOCKED_OUT}, status=429, headers={"Retry-After": str(left)})
        return super().post(request, *args, **kwargs)


@extend_schema_view(
    post=extend_schema(
        summary="New tokens for a refresh token (the refresh token is rotated)",
        responses={200: AccessTokenSerializer, 400: BAD_INPUT, 401: BAD_CREDENTIALS},
    )
)
class TokenRefreshAccessView(TokenRefreshView):
    serializer_class = RefreshForCurrentCredentialsSerializer
