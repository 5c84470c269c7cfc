"""A view limited by the join throttle's scope and rate, and a header telling which worker answered."""

import os
import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView


class ThrottledJoinLikeView(APIView):
    """Anonymous, so the throttle keys on the client address; same scope (and rate setting) as joining."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invite_join"

    def post(self, request: Request) -> Response:
        return Response({"ok": True})


def worker_pid_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Worker-PID"] = str(os.getpid())
        return response

    return middleware


def hold_worker(request: HttpRequest) -> StreamingHttpResponse:
    """Keep a (sync) worker busy for a moment; the headers, with its pid, go out at once."""

    def body() -> Iterator[bytes]:
        yield b"holding\n"
        time.sleep(0.5)
        yield b"released\n"

    return StreamingHttpResponse(body(), content_type="text/plain")


def regenerate_and_log(request: HttpRequest, space_id: str) -> HttpResponse:
    """Regenerate a code inside a request, so the engine's log line is written during it."""
    from invites.services import invite_code_regenerate

    change = invite_code_regenerate(space_id=space_id, actor_id="log-test", source="api")
    return HttpResponse(change.new_code)


def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("an unexpected failure")
