"""The base model of the single table, its one shared connection, and DynamoDB's failure modes.

The one adapter between PynamoDB and our settings (docs/architecture.md): every model shares one
``TableConnection`` with botocore's retry settings, rebuilt only when ``Meta`` or the settings change.
"""

import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import botocore.exceptions
from django.conf import settings
from pynamodb import constants
from pynamodb.attributes import UnicodeAttribute
from pynamodb.connection import Connection, TableConnection
from pynamodb.connection.base import MetaTable
from pynamodb.exceptions import PynamoDBException
from pynamodb.models import Model

from spaces.exceptions import DomainError, DynamoUnavailable

logger = logging.getLogger(__name__)

THROTTLING_ERROR_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
CREDENTIAL_ERROR_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)


class TableItem(Model):
    """Base of every item model: the table, host and region come from settings through ``Meta``."""

    class Meta:
        table_name = settings.DYNAMODB_TABLE
        region = settings.AWS_REGION
        host = settings.DYNAMODB_HOST
        connect_timeout_seconds = settings.DYNAMODB_CONNECT_TIMEOUT
        read_timeout_seconds = settings.DYNAMODB_READ_TIMEOUT
        max_pool_connections = settings.DYNAMODB_MAX_POOL_CONNECTIONS

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    sk = UnicodeAttribute(range_key=True, attr_name="SK")

    @classmethod
    def _get_connection(cls) -> TableConnection:
        # PynamoDB's per-class connection hook: all our models share one.
        return table_connection()


SECURITY_TABLE_SUFFIX = "-security"  # the security state's own table (accounts.security)
SCAN_PAGE_SIZE = 1000  # items per Scan page; without a Limit, DynamoDB Local reads the rest of the table per page
MAX_TOTAL_SEGMENTS = 1_000_000  # DynamoDB's limit on a parallel scan


def _refuse_cut_off(http_response: Any, **_: Any) -> None:
    """botocore reads a body cut short as {} ("not found", a scan's end); x-amz-crc32 tells, past its retries."""
    expected = http_response.headers.get("x-amz-crc32")
    if expected is not None and zlib.crc32(http_response.content) != int(expected):
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=http_response.url)


_lock = threading.Lock()
_shared: tuple[tuple[Any, ...], TableConnection, TableConnection] | None = None
_client_hooks: list[tuple[str, Callable[..., Any]]] = [("after-call.dynamodb", _refuse_cut_off)]


def table_connection(*, security: bool = False) -> TableConnection:
    """The process's one connection to the table, or to its security table (one botocore client, one pool)."""
    global _shared
    meta = TableItem.Meta
    base = (meta.table_name, meta.host, meta.region, meta.connect_timeout_seconds, meta.read_timeout_seconds)
    key = (*base, meta.max_pool_connections, settings.DYNAMODB_RETRY_MODE, settings.DYNAMODB_MAX_ATTEMPTS)
    shared = _shared
    if shared is None or shared[0] != key:
        with _lock:
            if _shared is None or _shared[0] != key:
                _shared = key, *_new_connections(*key)
            shared = _shared
    return shared[2] if security else shared[1]


def table_schema(table: str) -> dict[str, Any]:
    """The table as the models state it, in CreateTable's terms: PK/SK, and GSI1 (on :class:`Membership`)."""
    from spaces.models import Membership  # the models import this module

    schema = Membership._get_schema()
    return {
        "TableName": table,
        "KeySchema": schema["key_schema"],
        "AttributeDefinitions": schema["attribute_definitions"],
        "GlobalSecondaryIndexes": [
            {"IndexName": index["index_name"], "KeySchema": index["key_schema"], "Projection": index["projection"]}
            for index in schema["global_secondary_indexes"]
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _new_connections(
    table: str, host: str | None, region: str, connect: float, read: float, pool: int, mode: str, attempts: int
) -> tuple[TableConnection, TableConnection]:
    from accounts.security import SecurityItem  # it imports this module

    conn, security = TableConnection(table), TableConnection(table + SECURITY_TABLE_SUFFIX)
    conn.connection = Connection(
        region=region,
        host=host,
        connect_timeout_seconds=connect,
        read_timeout_seconds=read,
        max_pool_connections=pool,
        retry_configuration={"mode": mode, "total_max_attempts": attempts},
    )
    conn.connection.add_meta_table(MetaTable(table_schema(table)))
    schema = SecurityItem._get_schema()
    keys = {"KeySchema": schema["key_schema"], "AttributeDefinitions": schema["attribute_definitions"]}
    conn.connection.add_meta_table(MetaTable({"TableName": security.table_name, **keys}))
    security.connection = conn.connection
    for event_name, handler in _client_hooks:
        conn.connection.client.meta.events.register(event_name, handler)
    return conn, security


def botocore_client() -> Any:
    """The botocore DynamoDB client under the shared connection."""
    return table_connection().connection.client


def table_name() -> str:
    return str(TableItem.Meta.table_name)


def on_every_call(event_name: str, handler: Callable[..., Any]) -> None:
    """Register a botocore event handler on the shared client, now and on any client made later."""
    with _lock:
        _client_hooks.append((event_name, handler))
        shared = _shared
    if shared is not None:
        shared[1].connection.client.meta.events.register(event_name, handler)


def error_code(exc: BaseException) -> str | None:
    """The DynamoDB error code behind a PynamoDB or botocore exception, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, botocore.exceptions.ClientError):
            return cast(str | None, current.response.get("Error", {}).get("Code"))
        current = current.__cause__ or current.__context__ or getattr(current, "cause", None)
    return None


def is_condition_failure(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


def is_unreachable(exc: BaseException) -> bool:
    """True when the endpoint or the table cannot be reached at all."""
    code = error_code(exc)
    # botocore names an answer it cannot read as DynamoDB's by its HTTP status (a cut-off body, a proxy's page).
    if code == "ResourceNotFoundException" or (code is not None and code.isdigit()):
        return True
    network = (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.HTTPClientError,
        botocore.exceptions.NoCredentialsError,
    )
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, network):
            return True
        current = current.__cause__ or current.__context__
    return False


def _unavailable(exc: BaseException) -> DynamoUnavailable:
    meta = TableItem.Meta
    where = meta.host or f"AWS {meta.region}"
    return DynamoUnavailable(f"DynamoDB table {meta.table_name!r} at {where} cannot be reached: {short_reason(exc)}")


@contextmanager
def translate_unreachable() -> Iterator[None]:
    """Turn 'cannot reach DynamoDB or the table' into :class:`DynamoUnavailable`."""
    try:
        yield
    except PynamoDBException as exc:
        if is_unreachable(exc):
            raise _unavailable(exc) from exc
        raise


def scan_pages(segment: int | None = None, total_segments: int | None = None, **scan: Any) -> Iterator[dict[str, Any]]:
    """A Scan (of one segment) page by page, read as DYNAMODB_SCAN_SPLIT segments in turn: DynamoDB Local walks
    a segment from its start to find each page, so one segment of a big table takes quadratic time."""
    connection, every = table_connection(), total_segments or 1
    parts = every * min(settings.DYNAMODB_SCAN_SPLIT, MAX_TOTAL_SEGMENTS // every)  # both at least 1
    for part in range(segment or 0, parts, every):
        page: dict[str, Any] = {"LastEvaluatedKey": None}
        while "LastEvaluatedKey" in page:
            with translate_unreachable():
                page = connection.scan(limit=SCAN_PAGE_SIZE, segment=part, total_segments=parts,
                                       exclusive_start_key=page["LastEvaluatedKey"], **scan)  # fmt: skip
            yield page


def short_reason(exc: BaseException) -> str:
    """The one line that says what went wrong, for logs, reports, the admin and command errors."""
    if isinstance(exc, DomainError):
        return str(exc)
    root: BaseException = exc
    while root.__cause__ is not None:
        root = root.__cause__
    code = error_code(exc)
    text = str(root).splitlines()[0] if str(root) else type(root).__name__
    return f"{code}: {text}" if code and code not in text else text


ItemKey = tuple[str, str]


def get_many(item_keys: list[ItemKey], *, consistent: bool = True) -> dict[ItemKey, dict[str, Any]]:
    """BatchGetItem over any item types (a space with a membership in one round trip); raw items by key."""
    found: dict[ItemKey, dict[str, Any]] = {}
    pending = [{"PK": pk, "SK": sk} for pk, sk in dict.fromkeys(item_keys)]
    conn = table_connection()
    throttled_rounds = 0
    while pending:
        chunk, pending = pending[:100], pending[100:]
        response = conn.batch_get_item(chunk, consistent_read=consistent)  # type: ignore[arg-type]  # PynamoDB types keys as str; they are PK/SK maps
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


def ensure_table_reachable(*, connect_timeout: float = 2.0) -> int | None:
    """Fail fast with one line (:class:`DynamoUnavailable`) if the table cannot be used.

    A TCP connection first (a dead endpoint fails in seconds whatever the retries), then a DescribeTable that
    must answer as DynamoDB: its ``ItemCount`` (a six-hourly estimate), or None when it is not allowed.
    """
    meta = TableItem.Meta
    where = meta.host or f"AWS {meta.region}"
    try:
        client = botocore_client()
        endpoint = urlsplit(client.meta.endpoint_url)
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        socket.create_connection((endpoint.hostname, port), timeout=connect_timeout).close()
    except (OSError, ValueError) as exc:
        raise DynamoUnavailable(f"DynamoDB table {meta.table_name!r} at {where} cannot be reached: {exc}") from exc
    not_dynamodb = DynamoUnavailable(
        f"the endpoint {where} answered, but not as DynamoDB does; is DYNAMODB_HOST pointing at DynamoDB?"
    )
    try:
        table = client.describe_table(TableName=meta.table_name).get("Table")
    except Exception as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            raise DynamoUnavailable(f"DynamoDB table {meta.table_name!r} does not exist at {where}") from exc
        if code is None or code.isdigit():  # a web server that is not DynamoDB
            raise not_dynamodb from exc
        if is_unreachable(exc) or code in CREDENTIAL_ERROR_CODES:
            raise _unavailable(exc) from exc
        logger.debug("DescribeTable answered %s; the endpoint is there", code)
        return None
    if not isinstance(table, dict) or table.get("TableName") != meta.table_name:
        raise not_dynamodb
    count = table.get("ItemCount")
    return count if isinstance(count, int) else None
