"""``max_writes_per_second``: a token bucket on the item writes of one backfill's threads.

The bucket is applied by a botocore ``before-parameter-build`` hook, registered
once per process on the shared client (``spaces.dynamodb.on_every_call``).
Only threads that carry a limiter (:func:`limiting_this_thread`) wait, so the
web app's requests in the same process (the admin) are never held back by a
backfill.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from invites.backfill.exceptions import BackfillConfigError
from spaces.dynamodb import on_every_call

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


class RateLimiter:
    """A token bucket shared by threads: ``acquire(n)`` blocks until ``n`` item writes may go.

    A request larger than the bucket (a transaction of 99 actions under a cap
    of 10 a second) is let through once the bucket has paid for it: the
    tokens go negative and later writers wait until they are repaid, so the
    average rate holds whatever the request sizes.
    """

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not per_second > 0 or per_second == float("inf"):
            raise BackfillConfigError("max writes per second must be a positive number")
        self.per_second = per_second
        self.capacity = max(1.0, per_second)  # at most one second of burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self, count: int = 1) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= count
            # Tolerate float rounding of elapsed * rate.
            wait = 0.0 if self._tokens >= -1e-9 else -self._tokens / self.per_second
        if wait > 0:
            self._sleep(wait)


_thread_state = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


def write_limiter(per_second: float | None) -> RateLimiter | None:
    """A limiter for ``per_second`` item writes (None: no cap), with the hook that applies it in place."""
    if not per_second:
        return None
    limiter = RateLimiter(per_second)
    _install_hook()
    return limiter


@contextmanager
def limiting_this_thread(limiter: RateLimiter | None) -> Iterator[None]:
    """While inside, this thread's DynamoDB writes wait for ``limiter`` (None: they do not wait)."""
    _thread_state.limiter = limiter
    try:
        yield
    finally:
        _thread_state.limiter = None


def limit_writes_of_this_thread(model: Any, params: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parameter-build`` hook (it sees the call's parameters): writes from a
    rate-limited thread wait for their tokens, one per item written (each action of a
    transaction, each request of a batch).
    """
    limiter: RateLimiter | None = getattr(_thread_state, "limiter", None)
    if limiter is not None and model.name in WRITE_OPERATIONS:
        limiter.acquire(_items_written(model.name, params))


def _items_written(operation: str, params: dict[str, Any]) -> int:
    if operation == "TransactWriteItems":
        return len(params.get("TransactItems", ()))
    if operation == "BatchWriteItem":
        return sum(len(requests) for requests in params.get("RequestItems", {}).values())
    return 1


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            on_every_call("before-parameter-build.dynamodb", limit_writes_of_this_thread)
            _hook_installed = True
