"""The API's one exception handler: every error is a JSON ``detail`` safe to show; causes go to the log only."""

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from pynamodb.exceptions import PynamoDBException
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.security import SecurityStoreUnavailable
from operations.middleware import route_label
from spaces import exceptions as errors
from spaces.dynamodb import THROTTLING_ERROR_CODES, error_code

logger = logging.getLogger("api")

INTERNAL_ERROR_DETAIL = "Internal server error"
_DOMAIN_STATUS: dict[type[Exception], int] = {
    **dict.fromkeys((errors.SpaceNotFound, errors.NotAMember), 404),
    **dict.fromkeys((errors.NotAllowed, errors.Blocked), 403),  # Blocked is an InvalidInviteCode: listed first
    **dict.fromkeys((errors.InvalidInviteCode, errors.InvalidMemberChange), 400),
    **dict.fromkeys((errors.AlreadyMember, errors.NoInviteCode, errors.MemberConflict), 409),
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: map ``exc`` to its documented response."""
    for domain_error, status_code in _DOMAIN_STATUS.items():
        if isinstance(exc, domain_error):
            return Response({"detail": str(exc)}, status=status_code)
    if not isinstance(exc, exceptions.APIException | Http404 | PermissionDenied):
        return _server_failure_response(exc, context)
    if isinstance(exc, exceptions.ParseError):
        exc = exceptions.ParseError("The request body is not valid JSON")
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = exceptions.ParseError("The request body must be JSON (Content-Type: application/json)")
    response = drf_exception_handler(exc, context)
    assert response is not None  # DRF answers every APIException, Http404 and PermissionDenied
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": "Invalid input", "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data["detail"] = str(response.data["detail"])
    else:
        response.data = {"detail": str(response.data)}
    return response


def _server_failure_response(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    # The route pattern, never the path: paths carry invite codes and ids.
    where = f"{request.method} {route_label(request)}" if request is not None else "API"
    own_detail = getattr(context.get("view"), "server_error_detail", None)
    if own_detail and not isinstance(exc, SecurityStoreUnavailable):  # its own failure, not the throttle's
        logger.error("%s failed: %s", where, own_detail, exc_info=exc)
        return Response({"detail": own_detail}, status=500)
    throttled = isinstance(exc, PynamoDBException) and error_code(exc) in THROTTLING_ERROR_CODES
    if throttled or isinstance(exc, errors.DynamoUnavailable | errors.InviteCodeUnavailable):
        logger.warning("%s: DynamoDB unavailable or overloaded: %s", where, exc, exc_info=exc)
        detail = "The service is temporarily unavailable; please try again shortly"
        return Response({"detail": detail}, status=503, headers={"Retry-After": "5"})
    logger.error("%s failed unexpectedly", where, exc_info=exc)
    return Response({"detail": INTERNAL_ERROR_DETAIL}, status=500)


def _json_under_api(default_view: Callable[..., HttpResponse], status_code: int, detail: str) -> Callable[..., Any]:
    """A ``handler400/404/500``: JSON under /api/ (no view answered), Django's own page elsewhere."""

    def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": detail}, status=status_code)
        return default_view(request, *args, **kwargs)

    return handler


bad_request = _json_under_api(defaults.bad_request, 400, "Bad request")  # e.g. a body over the upload limit
not_found = _json_under_api(defaults.page_not_found, 404, "Not found.")
server_error = _json_under_api(defaults.server_error, 500, INTERNAL_ERROR_DETAIL)
