"""Fault injection through botocore hooks on the shared DynamoDB client.

``before-send`` handlers may return a response instead of sending the
request (botocore.endpoint), which is how these fake DynamoDB errors.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse

from spaces import dynamodb


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


def answer(request: Any, status: int, body: bytes, content_type: str = "application/x-amz-json-1.0") -> AWSResponse:
    """An HTTP answer to ``request`` that never reached the server."""
    return AWSResponse(request.url, status, {"Content-Type": content_type}, _Body(body))


def dynamodb_error(request: Any, code: str, message: str, status: int = 400) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}).encode()
    return answer(request, status, body)


class Throttler:
    """Answers a share of the calls with ProvisionedThroughputExceededException."""

    def __init__(self, share: float, seed: int = 4) -> None:
        self.share = share
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.injected = 0
        self.sent = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self.lock:
            self.sent += 1
            throttle = self.random.random() < self.share
            if throttle:
                self.injected += 1
        if throttle:
            return dynamodb_error(request, "ProvisionedThroughputExceededException", "Rate of requests exceeded")
        return None


def failing_when(predicate: Callable[[str, bytes], bool], code: str = "AccessDeniedException") -> Callable[..., Any]:
    """A hook failing every call whose (operation, body) matches, with a non-retryable error."""

    def hook(request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        if predicate(operation, body):
            return dynamodb_error(request, code, "User is not authorized to perform this action")
        return None

    return hook


class ClientEvents:
    """Handlers registered on the process's botocore DynamoDB client, to be unregistered together."""

    def __init__(self) -> None:
        self._registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def register(self, event_name: str, handler: Callable[..., Any]) -> None:
        events = dynamodb.botocore_client().meta.events
        events.register(event_name, handler)
        self._registered.append((events, event_name, handler))

    def unregister(self, event_name: str, handler: Callable[..., Any]) -> None:
        for entry in list(self._registered):
            events, name, registered = entry
            if name == event_name and registered is handler:
                events.unregister(name, registered)
                self._registered.remove(entry)

    def unregister_all(self) -> None:
        for events, event_name, handler in reversed(self._registered):
            events.unregister(event_name, handler)
        self._registered.clear()


@contextmanager
def client_hook(event_name: str, handler: Callable[..., Any]) -> Iterator[None]:
    events = ClientEvents()
    events.register(event_name, handler)
    try:
        yield
    finally:
        events.unregister_all()
