"""Request id, access log line and request metrics for every request."""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from operations import metrics
from operations.log_context import request_id_from_header, request_id_var
from spaces.dynamodb import short_reason
from spaces.exceptions import DynamoUnavailable, InviteCodeUnavailable

access_logger = logging.getLogger("operations.access")

UNMATCHED_ROUTE = "<unmatched>"
STATIC_ROUTE = "<static>"
STATIC_PATH_PREFIX = "/" + settings.STATIC_URL.lstrip("/")
# Probes, scrapes and static files would drown the access log.
QUIET_ROUTES = frozenset({"healthz", "readyz", "metrics", STATIC_ROUTE})


def route_label(request: HttpRequest) -> str:
    """The URL pattern that served the request: bounded, and free of ids and codes."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.route:
        return str(match.route)
    if request.path.startswith(STATIC_PATH_PREFIX):
        return STATIC_ROUTE  # served by WhiteNoise before URL resolution
    return getattr(request, "probe_route", UNMATCHED_ROUTE)


class RequestContextMiddleware:
    """Outermost: a request id for every log line and the response; an access line without path, headers or body."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_header(request.headers.get("X-Request-ID"))
        reset_token = request_id_var.set(request_id)
        request.request_id = request_id  # type: ignore[attr-defined]  # for lines logged after we return
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed, route, status = time.perf_counter() - started, route_label(request), response.status_code
            metrics.http_requests.labels(method=request.method, route=route, status=str(status)).inc()
            metrics.http_request_duration.labels(route=route).observe(elapsed)
            ms = elapsed * 1000
            fields = {"method": request.method, "route": route, "status": status, "duration_ms": round(ms, 1)}
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            access_logger.log(level, "%s %s %s %.1f ms", request.method, route, status, ms, extra=fields)
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_id_var.reset(reset_token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A page whose DynamoDB call (a join, a sign-in's lockout) failed: the 503 page, not a 500."""
        if not isinstance(exception, DynamoUnavailable | InviteCodeUnavailable):
            return None
        logging.getLogger("web").warning("Page unavailable: %s", short_reason(exception))
        return HttpResponse(render_to_string("web/unavailable.html"), status=503, headers={"Retry-After": "5"})
