"""The one connection to the single DynamoDB table, and its failure modes.

All item models share one PynamoDB ``TableConnection`` (and so one botocore
client and one connection pool), made once per process on first use from
Django settings and never replaced: timeouts, retry mode and pool size are
deliberate, see the README. A job that needs other retry settings (the
backfill) calls :func:`configure` before anything talks to DynamoDB.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import botocore.loaders
import botocore.session
from django.conf import settings
from pynamodb import constants
from pynamodb.connection import Connection, TableConnection
from pynamodb.connection.base import MetaTable
from pynamodb.exceptions import PynamoDBException

logger = logging.getLogger(__name__)

THROTTLING_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)


class DynamoUnavailable(Exception):
    """DynamoDB (or the table) cannot be reached; the caller should give up quickly."""


class DynamoBusy(DynamoUnavailable):
    """DynamoDB kept cancelling a transaction for conflicts or throttling; try again later."""


@dataclass(frozen=True)
class TableBinding:
    table_name: str
    region: str
    host: str | None
    connect_timeout: float
    read_timeout: float
    retry_mode: str
    max_attempts: int
    max_pool_connections: int


_lock = threading.Lock()
_overrides: dict[str, Any] = {}
_binding: TableBinding | None = None
_connection: TableConnection | None = None
_client_hooks: list[tuple[str, Callable[..., Any]]] = []


def binding_from_settings(**overrides: Any) -> TableBinding:
    values: dict[str, Any] = {
        "table_name": settings.DYNAMODB_TABLE,
        "region": settings.AWS_REGION,
        "host": settings.DYNAMODB_HOST,
        "connect_timeout": settings.DYNAMODB_CONNECT_TIMEOUT,
        "read_timeout": settings.DYNAMODB_READ_TIMEOUT,
        "retry_mode": settings.DYNAMODB_RETRY_MODE,
        "max_attempts": settings.DYNAMODB_MAX_ATTEMPTS,
        "max_pool_connections": settings.DYNAMODB_MAX_POOL_CONNECTIONS,
    }
    values.update(overrides)
    return TableBinding(**values)


def configure(**overrides: Any) -> bool:
    """Set this process's connection apart from settings (retry mode, attempts, pool) before its first use.

    Returns False and changes nothing when the connection is already made: a
    command run inside a process that already talks to DynamoDB (the admin's
    process, the test suite) keeps that process's connection, which is never
    replaced.
    """
    global _binding
    with _lock:
        if _connection is not None:
            return False
        _overrides.update(overrides)
        _binding = None
    return True


def current_binding() -> TableBinding:
    """What the process's connection is (or will be) made with; the models point at its table."""
    global _binding
    binding = _binding
    if binding is not None:
        return binding
    with _lock:
        if _binding is None:
            _binding = binding_from_settings(**_overrides)
            _point_models_at(_binding)
        return _binding


def _point_models_at(binding: TableBinding) -> None:
    from spaces.models import TableItem

    for model in (TableItem, *_all_item_models(TableItem)):
        model.Meta.table_name = binding.table_name
        model.Meta.region = binding.region


def _all_item_models(base: type) -> Iterator[type]:
    for sub in base.__subclasses__():
        yield sub
        yield from _all_item_models(sub)


def table_connection() -> TableConnection:
    """The shared connection; created on first use with the current binding."""
    global _connection
    if _connection is not None:
        return _connection
    binding = current_binding()
    with _lock:
        if _connection is None:
            conn = TableConnection(binding.table_name)
            conn.connection = _Connection(
                region=binding.region,
                host=binding.host,
                connect_timeout_seconds=binding.connect_timeout,
                read_timeout_seconds=binding.read_timeout,
                max_pool_connections=binding.max_pool_connections,
            )
            conn.connection.add_meta_table(_meta_table(binding.table_name))
            # TableConnection does not forward a retry configuration; set it
            # before the botocore client is created on first use.
            conn.connection._retry_configuration = {
                "mode": binding.retry_mode,
                "total_max_attempts": binding.max_attempts,
            }
            for event_name, handler in _client_hooks:
                conn.connection.client.meta.events.register(event_name, handler)
            _connection = conn
    return _connection


class _Connection(Connection):
    """PynamoDB's connection, with one botocore data loader for all of its sessions.

    PynamoDB makes a botocore session per thread; sharing the loader spares
    each one reading and parsing botocore's service model files (about 50 ms
    of CPU).
    """

    @property
    def session(self) -> botocore.session.Session:
        fresh = getattr(self._local, "session", None) is None
        session = super().session
        if fresh:
            session.register_component("data_loader", _shared_data_loader())
        return session


@functools.cache
def _shared_data_loader() -> botocore.loaders.Loader:
    return botocore.session.get_session().get_component("data_loader")


def botocore_client() -> Any:
    """The botocore DynamoDB client under the shared connection."""
    return table_connection().connection.client


def on_every_call(event_name: str, handler: Callable[..., Any]) -> None:
    """Register a botocore event handler of the product (metrics, the backfill's write limiter).

    Registered on the process's client when it is made, and at once if it exists.
    """
    with _lock:
        _client_hooks.append((event_name, handler))
        connection = _connection
    if connection is not None:
        connection.connection.client.meta.events.register(event_name, handler)


def _meta_table(table_name: str) -> MetaTable:
    from spaces.models import table_schema

    return MetaTable(table_schema(table_name))


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code behind a PynamoDB or botocore exception, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, PynamoDBException):
            # PynamoDB's cause_response_code fails when the cause carries no
            # response (a read timeout, a dropped connection): look ourselves.
            response = getattr(current.cause, "response", None)
            code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
            if code:
                return code
        if isinstance(current, botocore.exceptions.ClientError):
            return current.response.get("Error", {}).get("Code")
        current = current.__cause__ or current.__context__
    return None


def is_condition_failure(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def is_unreachable(exc: BaseException) -> bool:
    """True when the endpoint or the table cannot be reached at all."""
    code = error_code(exc)
    if code == "ResourceNotFoundException":
        return True
    if code is not None and code.isdigit():
        # botocore names an answer it cannot read as DynamoDB's by its HTTP status: a body
        # cut off on the way (a connection dropped mid-request) or a proxy's own error page.
        return True
    network_failures = (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.HTTPClientError,
        botocore.exceptions.NoCredentialsError,
    )
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, network_failures):
            return True
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def translate_unreachable() -> Iterator[None]:
    """Turn 'cannot reach DynamoDB or the table' into :class:`DynamoUnavailable`."""
    try:
        yield
    except PynamoDBException as exc:
        if is_unreachable(exc):
            binding = current_binding()
            where = binding.host or f"AWS {binding.region}"
            raise DynamoUnavailable(
                f"DynamoDB table {binding.table_name!r} at {where} cannot be reached: {short_reason(exc)}"
            ) from exc
        raise


def short_reason(exc: BaseException) -> str:
    """One line naming the root cause, for logs and command errors."""
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    code = error_code(exc)
    text = str(root).splitlines()[0] if str(root) else type(root).__name__
    return f"{code}: {text}" if code and code not in text else text


ItemKey = tuple[str, str]


def get_many(item_keys: list[ItemKey], *, consistent: bool = True) -> dict[ItemKey, dict[str, Any]]:
    """BatchGetItem over any item types; returns raw items by ``(PK, SK)``.

    Items of different models come back in one round trip, which is how the
    hot paths read a space together with the caller's membership.
    """
    found: dict[ItemKey, dict[str, Any]] = {}
    pending = [{"PK": pk, "SK": sk} for pk, sk in dict.fromkeys(item_keys)]
    conn = table_connection()
    throttled_rounds = 0
    while pending:
        chunk, pending = pending[:100], pending[100:]
        response = conn.batch_get_item(chunk, consistent_read=consistent)
        for raw in response.get(constants.RESPONSES, {}).get(conn.table_name, []):
            found[(raw["PK"]["S"], raw["SK"]["S"])] = raw
        unprocessed = response.get(constants.UNPROCESSED_KEYS, {}).get(conn.table_name, {}).get(constants.KEYS, [])
        if unprocessed:
            throttled_rounds += 1
            if throttled_rounds > 8:
                raise DynamoUnavailable("BatchGetItem kept returning unprocessed keys; the table is overloaded")
            time.sleep(min(1.0, 0.05 * 2**throttled_rounds))
            pending = [{"PK": k["PK"]["S"], "SK": k["SK"]["S"]} for k in unprocessed] + pending
    return found


CREDENTIAL_ERROR_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)


def ensure_table_reachable(*, connect_timeout: float = 2.0) -> int | None:
    """Fail fast, with a one-line reason (:class:`DynamoUnavailable`), if the table cannot be used.

    Returns DescribeTable's ``ItemCount`` (DynamoDB's estimate of every item,
    refreshed about every six hours; the commands' progress bars take it as
    their total), or None when DescribeTable is not allowed.

    First a plain TCP connection to the endpoint with a short timeout, so an
    unreachable endpoint fails within seconds whatever the client's retry
    policy; then one DescribeTable on the shared client, whose answer must be
    DynamoDB's (a web server that is not DynamoDB is refused). An error that
    proves DynamoDB is there (throttling, or DescribeTable not allowed by the
    caller's IAM policy) counts as reachable.
    """
    binding = current_binding()
    where = binding.host or f"AWS {binding.region}"
    client = botocore_client()
    endpoint = urlsplit(client.meta.endpoint_url)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=connect_timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DynamoUnavailable(
            f"DynamoDB table {binding.table_name!r} at {where} cannot be reached: {reason}"
        ) from exc
    not_dynamodb = DynamoUnavailable(
        f"the endpoint {where} answered, but not as DynamoDB does; is DYNAMODB_HOST pointing at DynamoDB?"
    )
    try:
        answer = client.describe_table(TableName=binding.table_name)
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise DynamoUnavailable(f"DynamoDB table {binding.table_name!r} does not exist at {where}") from exc
        if code is not None and code.isdigit():
            # A web server that is not DynamoDB: its HTML reads as an error named by its HTTP status.
            raise not_dynamodb from exc
        if is_unreachable(exc) or code in CREDENTIAL_ERROR_CODES:
            raise DynamoUnavailable(
                f"DynamoDB table {binding.table_name!r} at {where} cannot be reached: {short_reason(exc)}"
            ) from exc
        if code is None:
            raise not_dynamodb from exc
        logger.debug("DescribeTable answered %s; the endpoint is there", code)
        return None
    table = answer.get("Table")
    if not isinstance(table, dict) or table.get("TableName") != binding.table_name:
        raise not_dynamodb
    count = table.get("ItemCount")
    return count if isinstance(count, int) else None
