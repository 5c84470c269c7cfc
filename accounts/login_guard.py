"""Failed sign-ins, counted per username and per address in the shared cache from ``user_login_failed``.

Past a limit, every login front door refuses to check passwords for a while, never saying if the username exists.
"""

import hashlib
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

LOCKED_MESSAGE = "Too many failed sign-in attempts. Try again in {minutes} minute(s)."


def client_address(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES`` hops of X-Forwarded-For trusted)."""
    return str(BaseThrottle().get_ident(request))  # type: ignore[arg-type]  # DRF reads only META, as Django has it


def _keys(kind: str, value: str) -> tuple[str, str]:
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{kind}:{digest}", f"login-locked:{kind}:{digest}"


def _limits(username: str, address: str) -> list[tuple[str, str, int]]:
    checks = [("address", address, settings.LOGIN_FAILURES_PER_ADDRESS)]
    if username:
        checks.append(("username", username, settings.LOGIN_FAILURES_PER_USERNAME))
    return checks


def lockout_seconds_left(*, username: str, address: str) -> int:
    """0 when passwords may be checked; otherwise how long this username or address is locked out."""
    until = [cache.get(_keys(kind, value)[1]) for kind, value, _limit in _limits(username, address)]
    left = max((float(moment) - time.time() for moment in until if moment is not None), default=0.0)
    return int(left + 0.999) if left > 0 else 0


def record_failure(*, username: str, address: str) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    for kind, value, limit in _limits(username, address):
        failures_key, locked_key = _keys(kind, value)
        cache.add(failures_key, 0, timeout=window)
        try:
            failures = cache.incr(failures_key)
        except ValueError:  # expired between add and incr
            cache.set(failures_key, 1, timeout=window)
            failures = 1
        if failures >= limit:
            cache.set(locked_key, time.time() + window, timeout=window)


@receiver(user_login_failed)
def _count_failed_login(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **_: Any) -> None:
    if request is None:  # authenticate() called outside a request (a shell): nothing to limit
        return
    username = credentials.get("username") or ""
    record_failure(username=str(username), address=client_address(getattr(request, "_request", request)))
