"""The join page's answers that are not the invitation itself: not found, throttled, unavailable.

The not-found page is one page for every code that opens nothing (malformed,
unknown, replaced, expired, used up, paused): the same bytes whoever asks,
so it tells a guesser nothing about which it was.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

UNAVAILABLE_RETRY_AFTER = 5


def invite_not_found(request: HttpRequest) -> HttpResponse:
    # No request context: nothing about the visitor (user, CSRF token) can make two of these differ.
    return HttpResponse(render_to_string("web/not_found.html"), status=404)


def throttled(request: HttpRequest, wait_seconds: int) -> HttpResponse:
    context = {"wait_seconds": wait_seconds, "wait_minutes": _minutes(wait_seconds)}
    response = HttpResponse(render_to_string("web/throttled.html", context), status=429)
    response["Retry-After"] = str(wait_seconds)
    return response


def unavailable(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(render_to_string("web/unavailable.html"), status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    return response


def _minutes(seconds: int) -> int:
    return max(1, round(seconds / 60))
