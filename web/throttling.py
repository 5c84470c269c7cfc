"""The join page's limit per client address, against code guessing (``THROTTLE_JOIN_PAGE``).

Every request to the page counts (a preview, a join, a bad code), like the
API's preview and join; the counters live in the shared cache, so every
worker sees the same ones. The address is the one the login lockout uses
(:func:`accounts.login_guard.client_address`).
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from accounts.login_guard import client_address


class JoinPageThrottle(SimpleRateThrottle):
    scope = "join_page"

    def get_rate(self) -> str:
        # Read on every request (not once at import, as DRF's rates are), so the setting is live.
        return settings.THROTTLE_JOIN_PAGE

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


def join_page_wait(request: HttpRequest) -> int | None:
    """None when the request may go on (it is counted); otherwise the whole seconds to wait."""
    throttle = JoinPageThrottle()
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))
