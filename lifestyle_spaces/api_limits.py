"""Limits on what an API request may send, decided before its body is read.

DRF's JSON parser reads the raw stream, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies to the API. Here:

* a body announced larger than ``API_MAX_BODY_BYTES`` is answered 413 from
  its ``Content-Length`` alone, before anything reads it;
* a body sent without a ``Content-Length`` (chunked) is answered 411 without
  being read;
* JSON nested deeper than Python's recursion limit is the same 400 as any
  other invalid JSON, not a ``RecursionError`` (a 500).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

API_PATH_PREFIX = "/api/"
METHODS_WITH_A_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestBodyLimitMiddleware:
    """413 for an API body over the limit, 411 for one of unannounced length; nothing is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PATH_PREFIX) and request.method in METHODS_WITH_A_BODY:
            refusal = body_refusal(request.META)
            if refusal is not None:
                # The body stays unread: the connection is closed after this answer.
                refusal["Connection"] = "close"
                return refusal
        return self.get_response(request)


def body_refusal(meta: dict[str, Any]) -> JsonResponse | None:
    limit = settings.API_MAX_BODY_BYTES
    announced = (meta.get("CONTENT_LENGTH") or "").strip()
    if not announced:
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower():
            return JsonResponse({"detail": "A request body needs a Content-Length header"}, status=411)
        return None  # no body at all
    try:
        length = int(announced)
    except ValueError:
        return JsonResponse({"detail": "The Content-Length header is not a number"}, status=400)
    if length > limit:
        return JsonResponse({"detail": f"The request body is larger than {limit} bytes"}, status=413)
    return None


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, for which a body nested too deep is invalid JSON like any other."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep") from None
