"""Test-only views: hold a worker busy, log from inside a request, fail; and a header naming the worker."""

import os
import time
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse


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
