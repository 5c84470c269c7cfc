"""The API's authentication; apart from the token views because DRF imports it while loading its settings."""

import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from accounts.security import tokens_revoked_before

REVOKED = "This token was issued before the user's credentials changed"


def issued_before(token: Token, moment: float | None) -> bool:
    """True when ``token`` was issued before ``moment``, in whole seconds (so signing in right after a change works)."""
    return moment is not None and int(token.get("iat", 0)) < int(moment)


class RevocableJWTAuthentication(JWTStatelessUserAuthentication):
    """simplejwt's stateless authentication (one security-table read), refusing a revoked token or a non-UUID id."""

    def get_validated_token(self, raw_token: bytes) -> Token:
        token = super().get_validated_token(raw_token)
        user_id = token.get("user_id")
        try:
            uuid.UUID(str(user_id))
        except ValueError:
            raise InvalidToken("Token contained no recognizable user identification") from None
        if issued_before(token, tokens_revoked_before(str(user_id))):
            raise AuthenticationFailed(REVOKED, code="token_revoked")
        return token
