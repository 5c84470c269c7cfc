"""Liveness (``/healthz``) and readiness (``/readyz``) probes for load balancers.

Load balancers probe over plain HTTP, by IP address, without credentials. So
:class:`ProbeMiddleware` answers both paths before Django's host validation and
HTTPS redirect (``SECURE_REDIRECT_EXEMPT`` lists them too, should the
middleware ever move), and the answers name no host, table or version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import botocore.exceptions
import botocore.session
from botocore.config import Config
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from spaces.dynamodb import THROTTLING_ERROR_CODES, TableBinding, current_binding, error_code
from spaces.models import TableFlag

logger = logging.getLogger("operations.health")

# A key that never holds an item: reading it proves the table answers and the
# credentials may read it, at half a read unit.
READINESS_PROBE_FLAG = "readiness-probe"
READINESS_CACHE_KEY = "readiness-probe"

_client_lock = threading.Lock()
_probe_clients: dict[TableBinding, Any] = {}


def _probe_client(binding: TableBinding) -> Any:
    """A client of its own: one attempt and a short timeout, unlike the app's retrying client."""
    with _client_lock:
        client = _probe_clients.get(binding)
        if client is None:
            timeout = settings.READINESS_TIMEOUT
            client = botocore.session.get_session().create_client(
                "dynamodb",
                region_name=binding.region,
                endpoint_url=binding.host,
                config=Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"mode": "standard", "total_max_attempts": 1},
                ),
            )
            _probe_clients[binding] = client
        return client


def table_unready_reason() -> str | None:
    """None when the table answers a read now; otherwise a short reason safe to show anyone."""
    binding = current_binding()
    pk, sk = TableFlag.key(READINESS_PROBE_FLAG)
    try:
        _probe_client(binding).get_item(TableName=binding.table_name, Key={"PK": {"S": pk}, "SK": {"S": sk}})
    except (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError) as exc:
        return _unready("dynamodb_timeout", exc)
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionError) as exc:
        return _unready("dynamodb_unreachable", exc)
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return _unready("dynamodb_table_missing", exc)
        if code in THROTTLING_ERROR_CODES:
            return _unready("dynamodb_throttled", exc)
        return _unready("dynamodb_error", exc)
    except botocore.exceptions.BotoCoreError as exc:
        # Missing credentials and the like: the app could not serve either.
        return _unready("dynamodb_error", exc)
    return None


def _unready(reason: str, exc: BaseException) -> str:
    # The detail (host, table, AWS message) goes to the log only.
    logger.warning("Readiness check failed (%s): %s", reason, exc)
    return reason


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. No DynamoDB call, so a DynamoDB outage never restarts workers."""
    return JsonResponse({"status": "ok"})


def cache_unready_reason() -> str | None:
    """None when the shared cache (Redis, if ``CACHE_URL`` names it) answers; else a short reason.

    Throttles and login lockouts live there: an instance that cannot reach it
    would let every limit pass, or fail requests.
    """
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        return None
    try:
        cache.get(READINESS_CACHE_KEY)
    except Exception as exc:  # redis-py's ConnectionError, TimeoutError and the like
        return _unready("cache_unreachable", exc)
    return None


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the table answers a read within ``READINESS_TIMEOUT`` seconds, and the shared cache
    answers (when it is Redis); else 503 with a reason."""
    reason = table_unready_reason() or cache_unready_reason()
    if reason is not None:
        return JsonResponse({"status": "unavailable", "reason": reason}, status=503)
    return JsonResponse({"status": "ok"})


PROBES: dict[str, tuple[str, Callable[[HttpRequest], HttpResponse]]] = {
    "/healthz": ("healthz", healthz),
    "/healthz/": ("healthz", healthz),
    "/readyz": ("readyz", readyz),
    "/readyz/": ("readyz", readyz),
}


class ProbeMiddleware:
    """Answer the probes before host validation and the HTTPS redirect (placed before SecurityMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        route, view = probe
        request.probe_route = route  # type: ignore[attr-defined]  # read by the request metrics
        return view(request)
