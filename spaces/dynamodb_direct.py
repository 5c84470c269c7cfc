"""DynamoDB's item calls sent straight over HTTP: PynamoDB's request, botocore's rules, less machinery.

Why: a conditional PutItem costs about 1.1 ms of client CPU through
botocore's generic pipeline (request and response shapes walked in Python,
endpoint rules, request objects built on ``email.message``) and about 0.37 ms
sent this way. The backfill makes two such writes per space, the claim and
the switch, so they decide its CPU (docs/backfill.md); every request of the
API gains as well.

What stays botocore's, so behaviour does not fork:

* the credentials (refreshing ones included) and the endpoint of the client;
* the retry policy configured on the client, standard or adaptive, with its
  quota, backoff, throttle detection and client-side rate limiter: they are
  event handlers, and this module emits ``before-call``, ``before-send``,
  ``needs-retry``, ``after-call`` and ``after-call-error`` on the client with
  the arguments botocore's own client and endpoint pass, so every hook
  registered through ``spaces.dynamodb.add_client_hook`` (metrics, the
  backfill's write limiter, the tests' fault injection, the benchmarks'
  latency) sees these calls exactly as it sees the others;
* errors: parsed by botocore's parser and raised as the client's exception
  classes; so are answers holding a blob (base64 on the wire, bytes once
  parsed). Any other answer of an item call is plain JSON that botocore's
  parser would return unchanged, so it is read with ``json.loads``.

What is ours: the body (DynamoDB's JSON protocol is the call's parameters,
which PynamoDB has already typed), SigV4 signing of this one request shape
(``tests/test_dynamodb_direct.py`` checks it against botocore's signer, byte
for byte) and a small pool of the standard library's ``http.client``
connections. Table management calls, calls through a
proxy, and every call with ``DYNAMODB_DIRECT_CALLS=0`` take botocore's path.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import http.client
import json
import queue
import re
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from botocore import exceptions as boto_exceptions
from botocore.auth import SIGNED_HEADERS_BLACKLIST
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.credentials import Credentials
from botocore.endpoint import convert_to_response_dict
from botocore.hooks import first_non_none_response
from botocore.httpsession import get_cert_path
from botocore.parsers import create_parser
from botocore.utils import get_environ_proxies
from urllib3.util.wait import wait_for_read

# The item calls: their answers hold no timestamps, so only blobs need botocore's parser.
DIRECT_OPERATIONS = frozenset(
    {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query", "Scan"}
)
API_VERSION_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
SIGNING_SERVICE = "dynamodb"
# Headers a proxy or the HTTP library may change are not signed: botocore's list.
UNSIGNED_HEADERS = frozenset(SIGNED_HEADERS_BLACKLIST)


# A blob ("B" or "BS") in an answer: base64 on the wire, bytes from botocore's parser.
_MAY_HOLD_BLOBS = re.compile(rb'"BS?"\s*:')


class _Response(AWSResponse):
    """botocore's response over ``http.client``'s headers (already case-insensitive), not a copy of them."""

    def __init__(self, url: str, status_code: int, headers: Any, content: bytes) -> None:
        self.url = url
        self.status_code = status_code
        self.headers = headers
        self.raw = None  # the body is read whole: nothing streams
        self._content = content


def usable_for(endpoint_url: str) -> bool:
    """Direct calls do not speak to proxies; botocore does, so it keeps those endpoints."""
    return not get_environ_proxies(endpoint_url)


def _encode_blob(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not a DynamoDB attribute value")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    # The derived key depends on the day only: derive it once per day, as the SDKs do.
    key = _hmac(f"AWS4{secret_key}".encode(), day)
    return _hmac(_hmac(_hmac(key, region), SIGNING_SERVICE), "aws4_request")


def sigv4_headers(
    *,
    headers: Mapping[str, str],
    host: str,
    body: bytes,
    region: str,
    credentials: Any,
    now: datetime.datetime,
) -> dict[str, str]:
    """``headers`` plus Host, X-Amz-Date, the session token if any, and Authorization.

    SigV4 (header-signed, payload hashed) for a POST to ``/`` with no query
    string, which is every DynamoDB call.
    """
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {"Host": host, **headers, "X-Amz-Date": amz_date}
    if credentials.token:
        signed["X-Amz-Security-Token"] = credentials.token
    canonical = sorted(
        (name.lower(), " ".join(str(value).split()))
        for name, value in signed.items()
        if name.lower() not in UNSIGNED_HEADERS
    )
    signed_names = ";".join(name for name, _ in canonical)
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            "".join(f"{name}:{value}\n" for name, value in canonical),
            signed_names,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{day}/{region}/{SIGNING_SERVICE}/aws4_request"
    string_to_sign = "\n".join(
        ("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
    )
    signature = hmac.new(
        _signing_key(credentials.secret_key, day, region), string_to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    signed["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return signed


def host_header(endpoint_url: str) -> str:
    """What SigV4 signs as the host: lower case, the port only when it is not the scheme's default."""
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    return f"{host}:{parts.port}" if parts.port and parts.port != default_port else host


def _plain_json_answer(http_response: AWSResponse) -> dict[str, Any] | None:
    """A successful answer without blobs, as botocore's parser would build it; None for any other.

    Without blobs, DynamoDB's JSON is the answer of an item call exactly as
    botocore's parser returns it, so the walk over shapes can be skipped.
    """
    body = http_response.content
    if http_response.status_code >= 300 or _MAY_HOLD_BLOBS.search(body):
        return None
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return None  # not JSON: botocore's parser decides what that means
    if not isinstance(parsed, dict):
        return None
    parsed["ResponseMetadata"] = {
        "RequestId": http_response.headers.get("x-amzn-RequestId", ""),
        "HTTPStatusCode": http_response.status_code,
        "HTTPHeaders": {name.lower(): value for name, value in http_response.headers.items()},
        "RetryAttempts": 0,
    }
    return parsed


class _ConnectionPool:
    """Keep-alive HTTP/1.1 connections to one endpoint, from the standard library's ``http.client``.

    Not urllib3's pool, which costs a fifth of a call's CPU here in bookkeeping
    this one use does not need. What it would give is kept: separate connect
    and read timeouts, TLS verified against botocore's CA bundle, TCP_NODELAY,
    an idle connection the server has closed is dropped before reuse, and
    failures are botocore's exceptions, as its HTTP session raises them.
    """

    def __init__(self, url: str, *, connect_timeout: float, read_timeout: float, max_idle: int) -> None:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if https else 80)
        self._url = url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = ssl.create_default_context(cafile=get_cert_path(True)) if https else None
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue(maxsize=max_idle)

    def post(self, request: AWSPreparedRequest) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = self._connection()
        try:
            connection.request("POST", "/", body=request.body, headers=request.headers)
            response = connection.getresponse()
            content = response.read()
        except Exception as exc:
            connection.close()
            raise self._botocore_error(exc, request) from exc
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        return response.status, response.headers, content

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return

    def _connection(self) -> http.client.HTTPConnection:
        while True:
            try:
                connection = self._idle.get_nowait()
            except queue.Empty:
                return self._connect()
            # Readable while idle means the server closed it (or sent garbage): not reusable.
            if connection.sock is not None and not wait_for_read(connection.sock, timeout=0.0):
                return connection
            connection.close()

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._tls is not None:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            if isinstance(exc, ssl.SSLError):
                raise boto_exceptions.SSLError(endpoint_url=self._url, error=exc) from exc
            if isinstance(exc, TimeoutError):
                raise boto_exceptions.ConnectTimeoutError(endpoint_url=self._url, error=exc) from exc
            raise boto_exceptions.EndpointConnectionError(endpoint_url=self._url, error=exc) from exc
        assert connection.sock is not None
        connection.sock.settimeout(self._read_timeout)
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        try:
            self._idle.put_nowait(connection)
        except queue.Full:
            connection.close()

    def _botocore_error(self, exc: Exception, request: AWSPreparedRequest) -> Exception:
        """What botocore's HTTP session raises for a failure after the connection was made."""
        if isinstance(exc, ssl.SSLError):
            return boto_exceptions.SSLError(endpoint_url=self._url, error=exc)
        if isinstance(exc, TimeoutError):
            return boto_exceptions.ReadTimeoutError(endpoint_url=self._url, error=exc)
        if isinstance(exc, http.client.HTTPException | ConnectionError):
            # The server went away or answered something that is not HTTP.
            return boto_exceptions.ConnectionClosedError(error=exc, request=request, endpoint_url=self._url)
        return boto_exceptions.HTTPClientError(error=exc)


class DirectCalls:
    """Sends :data:`DIRECT_OPERATIONS` for one botocore DynamoDB client; thread-safe."""

    def __init__(
        self,
        client: Any,
        credentials: Credentials | None,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_pool_connections: int,
    ) -> None:
        self.client = client
        self._credentials = credentials
        self._events = client.meta.events
        self._service_id = client.meta.service_model.service_id.hyphenize()
        self._region = client.meta.region_name
        self._url = client.meta.endpoint_url
        self._host = host_header(self._url)
        self._parser = create_parser(client.meta.service_model.metadata["protocol"])
        self._operation_models = {
            name: client.meta.service_model.operation_model(name) for name in sorted(DIRECT_OPERATIONS)
        }
        self._pool = _ConnectionPool(
            self._url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_idle=max_pool_connections,
        )

    def close(self) -> None:
        self._pool.close()

    def call(self, operation_name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The parsed answer, or the botocore exception ``client.<operation>(**params)`` would raise."""
        model = self._operation_models[operation_name]
        context: dict[str, Any] = {
            "client_region": self._region,
            "client_config": self.client.meta.config,
            "has_streaming_input": False,
            "auth_type": model.resolved_auth_type,
        }
        request_dict: dict[str, Any] = {
            "url_path": "/",
            "query_string": "",
            "method": "POST",
            "headers": {"X-Amz-Target": API_VERSION_PREFIX + operation_name, "Content-Type": CONTENT_TYPE},
            "body": json.dumps(params, separators=(",", ":"), default=_encode_blob).encode("utf-8"),
            "url": self._url,
            "context": context,
        }
        _handler, answered = self._events.emit_until_response(
            f"before-call.{self._service_id}.{operation_name}",
            model=model,
            params=request_dict,
            request_signer=None,
            context=context,
        )
        if answered is not None:
            http_response, parsed = answered
        else:
            try:
                http_response, parsed = self._send_with_retries(model, request_dict)
            except Exception as exc:
                self._events.emit(
                    f"after-call-error.{self._service_id}.{operation_name}", exception=exc, context=context
                )
                raise
        self._events.emit(
            f"after-call.{self._service_id}.{operation_name}",
            http_response=http_response,
            parsed=parsed,
            model=model,
            context=context,
        )
        if http_response.status_code >= 300:
            code = parsed.get("Error", {}).get("Code")
            raise self.client.exceptions.from_code(code)(parsed, operation_name)
        return parsed

    # --- one call, as botocore's Endpoint._send_request makes it -----------------------------

    def _send_with_retries(self, model: Any, request_dict: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
        retries = request_dict["context"].setdefault("retries", {})
        attempts = 1
        while True:
            retries["attempt"] = attempts
            answer, exception = self._attempt(model, request_dict)
            delay = first_non_none_response(
                self._events.emit(
                    f"needs-retry.{self._service_id}.{model.name}",
                    response=answer,
                    endpoint=self,
                    operation=model,
                    attempts=attempts,
                    caught_exception=exception,
                    request_dict=request_dict,
                )
            )
            if delay is None or delay is False:
                break
            time.sleep(delay)
            attempts += 1
        if exception is not None:
            raise exception
        assert answer is not None
        answer[1].setdefault("ResponseMetadata", {})["RetryAttempts"] = attempts - 1
        return answer

    def _attempt(
        self, model: Any, request_dict: dict[str, Any]
    ) -> tuple[tuple[AWSResponse, dict[str, Any]] | None, Exception | None]:
        request = self._signed_request(request_dict)
        try:
            responses = self._events.emit(f"before-send.{self._service_id}.{model.name}", request=request)
            http_response = first_non_none_response(responses)
            if http_response is None:
                http_response = self._send(request)
            parsed = self._parse(http_response, model)
        except Exception as exc:  # botocore hands every failure to its retry handler, so do we
            return None, exc
        return (http_response, parsed), None

    def _signed_request(self, request_dict: dict[str, Any]) -> AWSPreparedRequest:
        credentials = self._frozen_credentials()
        headers = sigv4_headers(
            headers=request_dict["headers"],
            host=self._host,
            body=request_dict["body"],
            region=self._region,
            credentials=credentials,
            now=datetime.datetime.now(datetime.UTC),
        )
        return AWSPreparedRequest("POST", self._url, headers, request_dict["body"], stream_output=False)

    def _frozen_credentials(self) -> Any:
        if self._credentials is None:
            raise boto_exceptions.NoCredentialsError()
        # Refreshing credentials may change between reads of their parts: take one snapshot.
        return self._credentials.get_frozen_credentials()

    def _send(self, request: AWSPreparedRequest) -> AWSResponse:
        status, headers, content = self._pool.post(request)
        return _Response(request.url, status, headers, content)

    def _parse(self, http_response: AWSResponse, model: Any) -> dict[str, Any]:
        plain = _plain_json_answer(http_response)
        if plain is not None:
            return plain
        response_dict = convert_to_response_dict(http_response, model)
        parsed = self._parser.parse(response_dict, model.output_shape)
        if response_dict["status_code"] >= 300:
            # As botocore's endpoint does: fields the error's shape models (say, the item
            # of a failed condition) are parsed with that shape.
            code = parsed.get("Error", {}).get("Code")
            error_shape = model.service_model.shape_for_error_code(code) if code else None
            if error_shape is not None:
                parsed.update(self._parser.parse(response_dict, error_shape))
        return parsed
