"""Prometheus counters at ``/metrics`` for a ``METRICS_TOKEN`` holder; labels name URL patterns, never paths."""

import hmac
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY as PROCESS_REGISTRY

from spaces.dynamodb import THROTTLING_ERROR_CODES, on_every_call

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Commands run with the server's environment too: a missing directory must not stop them.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

http_requests = Counter(
    "lifestyle_http_requests",
    "HTTP requests answered, by method, URL pattern and status code.",
    ["method", "route", "status"],
)
http_request_duration = Histogram(
    "lifestyle_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
dynamodb_calls = Counter(
    "lifestyle_dynamodb_calls", "DynamoDB API calls made (before retries), by operation.", ["operation"]
)
dynamodb_throttles = Counter(
    "lifestyle_dynamodb_throttles",
    "DynamoDB attempts refused with a throttling error (each is retried by botocore), by operation.",
    ["operation"],
)
dynamodb_failed_attempts = Counter(
    "lifestyle_dynamodb_failed_attempts",
    "DynamoDB attempts that failed on the network (endpoint down, timeout), by operation.",
    ["operation"],
)
invite_codes_generated = Counter(
    "lifestyle_invite_codes_generated",
    "New invite codes claimed (every space creation, regeneration and backfill assignment).",
)
invite_code_collisions = Counter(
    "lifestyle_invite_code_collisions",
    "Drawn invite codes that were already taken and drawn again, by what they collided with.",
    ["kind"],
)
invite_code_changes = Counter(
    "lifestyle_invite_code_changes",
    "Invite codes set on spaces, by front door (api, admin, backfill, ...).",
    ["source"],
)
transaction_retries = Counter(
    "lifestyle_dynamodb_transaction_retries",
    "Transactions tried again after DynamoDB cancelled them for a conflict or throttling only.",
    ["reason"],
)


def _count_call(model: Any, **_: Any) -> None:
    dynamodb_calls.labels(operation=model.name).inc()


def _count_attempt_outcome(
    response: tuple[Any, dict[str, Any]] | None, operation: Any, caught_exception: Exception | None, **_: Any
) -> None:
    # botocore calls this after every attempt; returning None leaves the retry decision to its retry handler.
    if caught_exception is not None:
        dynamodb_failed_attempts.labels(operation=operation.name).inc()
    elif response is not None and response[1].get("Error", {}).get("Code") in THROTTLING_ERROR_CODES:
        dynamodb_throttles.labels(operation=operation.name).inc()


def install_dynamodb_hooks() -> None:
    """Count calls, throttles and network failures on the shared botocore client."""
    on_every_call("before-call.dynamodb", _count_call)
    on_every_call("needs-retry.dynamodb", _count_attempt_outcome)


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The text exposition of every counter (all workers' in multiprocess mode)."""
    token = settings.METRICS_TOKEN
    if not token and not settings.DEBUG:
        raise Http404  # unconfigured in production: the page does not exist
    if token and not hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}
        return HttpResponse("Unauthorized\n", status=401, content_type="text/plain", headers=challenge)
    registry = PROCESS_REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
