"""How the API knows its caller: a signed access token, checked against revocations.

Kept apart from the token views: DRF imports this module while it loads its
settings, before any view may be imported.
"""

from __future__ import annotations

import uuid

from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import Token

from accounts.revocation import tokens_revoked_before

REVOKED = "This token was issued before the user's credentials changed"


def issued_before(token: Token, moment: float | None) -> bool:
    """True when ``token`` was issued before ``moment`` (a timestamp), to the second.

    A token's ``iat`` has whole seconds: a token issued within the second of
    the change is still accepted, so that signing in again right after a
    password change works.
    """
    return moment is not None and int(token.get("iat", 0)) < int(moment)


class RevocableJWTAuthentication(JWTStatelessUserAuthentication):
    """simplejwt's stateless authentication, refusing a revoked token and one without a UUID user.

    One read of the shared cache per request (``accounts.revocation``); no
    relational or DynamoDB call. The ``user_id`` must be a UUID in debug mode
    too: user ids become DynamoDB keys.
    """

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
