"""The REST API's one exception handler: every error becomes a documented JSON body.

Every error response has a ``detail`` string that is safe to show a user;
validation errors add ``errors`` (field -> messages). Nothing internal (a
DynamoDB message, a parser's complaint, a traceback) ever reaches a response:
server-side causes go to the log. docs/api.md has the table.

* Engine errors (spaces.exceptions): 404, 403, 400, 409 with their own text.
* DynamoDB unreachable, throttled, or out of fresh codes: 503 with
  ``Retry-After``, except on a view that names its own failure text in
  ``server_error_detail`` (the guide's regenerate contract): then 500 with it.
* Anything unexpected: 500, logged with its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from pynamodb.exceptions import PynamoDBException
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from operations.middleware import route_label
from spaces.dynamodb import THROTTLING_ERROR_CODES, DynamoUnavailable, error_code
from spaces.exceptions import (
    AlreadyMember,
    InvalidInviteCode,
    InviteCodeUnavailable,
    NoInviteCode,
    NotAllowed,
    SpaceNotFound,
)

logger = logging.getLogger("api")

SERVICE_UNAVAILABLE_DETAIL = "The service is temporarily unavailable; please try again shortly"
SERVICE_UNAVAILABLE_RETRY_AFTER = "5"
INTERNAL_ERROR_DETAIL = "Internal server error"
INVALID_INPUT_DETAIL = "Invalid input"
MALFORMED_JSON_DETAIL = "The request body is not valid JSON"
NOT_JSON_DETAIL = "The request body must be JSON (Content-Type: application/json)"

_DOMAIN_STATUS: dict[type[Exception], int] = {
    SpaceNotFound: status.HTTP_404_NOT_FOUND,
    NotAllowed: status.HTTP_403_FORBIDDEN,
    InvalidInviteCode: status.HTTP_400_BAD_REQUEST,
    AlreadyMember: status.HTTP_409_CONFLICT,
    NoInviteCode: status.HTTP_409_CONFLICT,
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``: map ``exc`` to its documented response."""
    for domain_error, status_code in _DOMAIN_STATUS.items():
        if isinstance(exc, domain_error):
            return Response({"detail": str(exc)}, status=status_code)
    if isinstance(exc, exceptions.APIException | Http404 | PermissionDenied):
        return _api_exception_response(exc, context)
    return _server_failure_response(exc, context)


def _api_exception_response(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, exceptions.ParseError):
        exc = exceptions.ParseError(MALFORMED_JSON_DETAIL)
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = exceptions.ParseError(NOT_JSON_DETAIL)
    response = drf_exception_handler(exc, context)
    if response is None:  # pragma: no cover - DRF handles every APIException
        return _server_failure_response(exc, context)
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": INVALID_INPUT_DETAIL, "errors": errors}
    elif isinstance(response.data, dict) and "detail" in response.data:
        response.data["detail"] = str(response.data["detail"])
    else:  # pragma: no cover - only ValidationError carries a list or bare value
        response.data = {"detail": str(response.data)}
    return response


def _is_overload(exc: Exception) -> bool:
    if isinstance(exc, DynamoUnavailable | InviteCodeUnavailable):
        return True
    return isinstance(exc, PynamoDBException) and error_code(exc) in THROTTLING_ERROR_CODES


def _server_failure_response(exc: Exception, context: dict[str, Any]) -> Response:
    view = context.get("view")
    request = context.get("request")
    # The route pattern, never the path: paths carry invite codes and ids.
    where = f"{request.method} {route_label(request)}" if request is not None else "API"
    own_detail = getattr(view, "server_error_detail", None)
    if own_detail:
        logger.error("%s failed: %s", where, own_detail, exc_info=exc)
        return Response({"detail": own_detail}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if _is_overload(exc):
        logger.warning("%s: DynamoDB unavailable or overloaded: %s", where, exc, exc_info=exc)
        return Response(
            {"detail": SERVICE_UNAVAILABLE_DETAIL},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": SERVICE_UNAVAILABLE_RETRY_AFTER},
        )
    logger.error("%s failed unexpectedly", where, exc_info=exc)
    return Response({"detail": INTERNAL_ERROR_DETAIL}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


# --- Django's own error views, for /api/ paths no route matches ----------------------


def _is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception) -> Any:
    """``handler404``: JSON under /api/, Django's page elsewhere."""
    if _is_api_path(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> Any:
    """``handler500``: JSON under /api/ (errors outside the views), Django's page elsewhere."""
    if _is_api_path(request):
        return JsonResponse({"detail": INTERNAL_ERROR_DETAIL}, status=500)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> Any:
    """``handler400``: JSON under /api/ (e.g. a body over the upload limit), Django's page elsewhere."""
    if _is_api_path(request):
        return JsonResponse({"detail": "Bad request"}, status=400)
    from django.views.defaults import bad_request as default_bad_request

    return default_bad_request(request, exception)
