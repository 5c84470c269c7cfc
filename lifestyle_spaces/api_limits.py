"""Limits on an API request's body, decided before it is read (DRF's parser ignores DATA_UPLOAD_MAX_MEMORY_SIZE)."""

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

METHODS_WITH_A_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestBodyLimitMiddleware:
    """413 for an API body over the limit, 411 for one of unannounced length; nothing is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = None
        if request.path.startswith("/api/") and request.method in METHODS_WITH_A_BODY:
            refusal = self.refusal(request.META, settings.API_MAX_BODY_BYTES)
        if refusal is None:
            return self.get_response(request)
        response = JsonResponse({"detail": refusal[1]}, status=refusal[0])
        response["Connection"] = "close"  # the body stays unread: the connection cannot serve another request
        return response

    @staticmethod
    def refusal(meta: dict[str, Any], limit: int) -> tuple[int, str] | None:
        announced = (meta.get("CONTENT_LENGTH") or "").strip()
        if not announced:  # no body at all, or one of unannounced length
            chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
            return (411, "A request body needs a Content-Length header") if chunked else None
        try:
            length = int(announced)
        except ValueError:
            return 400, "The Content-Length header is not a number"
        return (413, f"The request body is larger than {limit} bytes") if length > limit else None


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, for which a body nested too deep is invalid JSON (400), not a RecursionError (500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deep") from None
