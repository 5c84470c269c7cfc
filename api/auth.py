"""Tokens: simplejwt's views, guarded by lockouts (login), used once, refused after a credentials change (refresh)."""

from typing import Any, cast

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

from accounts.security import password_check
from api.authentication import REVOKED, issued_before
from lifestyle_spaces.api_schema import BAD_INPUT, THROTTLED, AccessTokenSerializer, TokenPairSerializer, error

BAD_CREDENTIALS = error("Wrong credentials, an inactive or deleted user, or an invalid or expired refresh token.")
LOCKED_OUT = "Too many failed sign-in attempts; try again later"


class RefreshTokenUsedOnce(RefreshToken):
    def blacklist(self) -> Any:  # of concurrent refreshes, the one that inserts the one-to-one blacklist row wins
        blacklisted, created = cast(tuple[Any, bool], super().blacklist())  # get_or_create's pair
        if not created:
            raise InvalidToken("Token is blacklisted")
        return blacklisted, created


@extend_schema_serializer(component_name="TokenRefresh")
class RefreshForCurrentCredentialsSerializer(TokenRefreshSerializer):
    """A refresh token, traded for a new access token and a new refresh token."""

    token_class = RefreshTokenUsedOnce

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
        with password_check(username=name if isinstance(name, str) else "", request=request) as locked_for:
            if locked_for:
                return Response({"detail": LOCKED_OUT}, status=429, headers={"Retry-After": str(locked_for)})
            return super().post(request, *args, **kwargs)


@extend_schema_view(
    post=extend_schema(
        summary="New tokens for a refresh token (the refresh token is rotated)",
        responses={200: AccessTokenSerializer, 400: BAD_INPUT, 401: BAD_CREDENTIALS},
    )
)
class TokenRefreshAccessView(TokenRefreshView):
    serializer_class = RefreshForCurrentCredentialsSerializer
