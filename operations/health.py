"""Liveness (``/healthz``) and readiness (``/readyz``), answered before host validation and the HTTPS redirect:
load balancers probe over plain HTTP, by address, without credentials. The answers name no host or table."""

import functools
import logging
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.config import Config
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from spaces.dynamodb import THROTTLING_ERROR_CODES, botocore_client, error_code, table_connection
from spaces.models import TableFlag

logger = logging.getLogger("operations.health")

# A key that never holds an item: reading it proves the table answers and may be read, at half a read unit.
READINESS_PROBE_FLAG = "readiness-probe"


@functools.cache
def _probe_client(region: str, endpoint_url: str) -> Any:
    """A client of its own: one attempt and a short timeout, unlike the app's retrying client."""
    timeout = settings.READINESS_TIMEOUT
    once = Config(connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1})
    session = botocore.session.get_session()
    return session.create_client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=once)


def _reason(exc: Exception) -> str:
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError):
        return "dynamodb_timeout"
    if isinstance(exc, botocore.exceptions.ConnectionError):
        return "dynamodb_unreachable"
    code = error_code(exc)  # None for missing credentials and the like: the app could not serve either
    if code == "ResourceNotFoundException":
        return "dynamodb_table_missing"
    return "dynamodb_throttled" if code in THROTTLING_ERROR_CODES else "dynamodb_error"


def unready_reason() -> str | None:
    """None when the table answers a read now; else a reason."""
    app_client = botocore_client()
    client = _probe_client(app_client.meta.region_name, app_client.meta.endpoint_url)
    pk, sk = TableFlag.key(READINESS_PROBE_FLAG)
    try:
        client.get_item(TableName=table_connection().table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}})
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        logger.warning("Readiness check failed (%s): %s", _reason(exc), exc)  # the detail goes to the log only
        return _reason(exc)
    return None


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: no DynamoDB call, so a DynamoDB outage never restarts workers."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the table answers within ``READINESS_TIMEOUT`` seconds."""
    reason = unready_reason()
    if reason is not None:
        return JsonResponse({"status": "unavailable", "reason": reason}, status=503)
    return JsonResponse({"status": "ok"})


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware(MiddlewareMixin):
    """Answer the probes before host validation and the HTTPS redirect (placed before SecurityMiddleware)."""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        view = PROBES.get(request.path_info.removesuffix("/"))
        if view is None:
            return None
        request.probe_route = view.__name__  # type: ignore[attr-defined]  # read by the request metrics
        return view(request)
