"""Invite codes as strings: the alphabet, drawing a code, reading what a user typed."""

import hashlib
import hmac
import re
import secrets

from django.conf import settings

# Upper-case letters and digits without look-alikes: no 0/O, 1/I/L.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8

NEW_CODE_RE = re.compile(rf"[{ALPHABET}]{{{CODE_LENGTH}}}")
# What the earlier system may have stored: token_urlsafe() or hex, any case; the rest is refused before a key is built.
ACCEPTED_CODE_RE = re.compile(r"[A-Za-z0-9_-]{4,32}")


class MalformedCode(ValueError):
    """The text cannot be an invite code, old or new."""


def generate_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def is_new_format(code: str) -> bool:
    return NEW_CODE_RE.fullmatch(code) is not None


def normalize_typed_code(typed: str) -> str:
    """What a user typed -> the text to look up; raises :class:`MalformedCode`. Surrounding white space is dropped;
    case is kept: lookups of claims are case-insensitive anyway, legacy mappings are keyed by the code as stored."""
    if not isinstance(typed, str):
        raise MalformedCode("an invite code is text")
    candidate = typed.strip()
    if ACCEPTED_CODE_RE.fullmatch(candidate) is None:
        raise MalformedCode("not an invite code")
    return candidate


def same_code(stored: str | None, typed: str) -> bool:
    """Codes compare without regard to case (the claim key is case-folded)."""
    return stored is not None and stored.upper() == typed.upper()


def fingerprint(code: str | None) -> str:
    """A short stand-in for a code in the web application's logs: the same code, the same fingerprint. Keyed with
    the secret key, so that the 31^8 possible codes cannot be tried against it offline; case-insensitive like codes."""
    if not code:
        return "(none)"
    digest = hmac.new(settings.SECRET_KEY.encode(), code.upper().encode(), hashlib.sha256).hexdigest()
    return f"code#{digest[:10]}"
