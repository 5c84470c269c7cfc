"""Limits on an API request's body, decided before it is read (DRF's parser ignores DATA_UPLOAD_MAX_MEMORY_SIZE)."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class RequestBodyLimitMiddleware(MiddlewareMixin):
    """413 for an API body over the limit, 411 for one of unannounced length; nothing is read."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        with_body = request.path.startswith("/api/") and request.method in {"POST", "PUT", "PATCH", "DELETE"}
        refusal = self.refusal(request.META, settings.API_MAX_BODY_BYTES) if with_body else None
        if refusal is None:
            return None
        # No `Connection: close` (PEP 3333 leaves hop-by-hop headers to the server): gunicorn discards the unread body.
        return JsonResponse({"detail": refusal[1]}, status=refusal[0])

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
