"""The direct path for item calls (spaces/dynamodb_direct.py) against botocore's own.

The direct path is only worth having if it is indistinguishable from
botocore's: the same signature, the same answers, the same exceptions, the
same retries and hooks. Each test compares the two on the moto server.
"""

from __future__ import annotations

import dataclasses
import datetime
import socket
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.exceptions
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.load_test import start_forwarder
from invites import services as engine
from devtools.embedded_dynamodb import free_port
from spaces import dynamodb, dynamodb_direct
from spaces.services import space_create
from tests.faults import answer, client_hook, dynamodb_error

MOMENT = datetime.datetime(2026, 11, 28, 9, 30, 15, tzinfo=datetime.UTC)


@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8123", "https://dynamodb.eu-west-1.amazonaws.com", "https://LOCALHOST:443"]
)
def test_the_signature_is_botocores_byte_for_byte(endpoint: str, token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = b'{"TableName":"t","Key":{"PK":{"S":"SPACE#1"},"SK":{"S":"METADATA"}}}'
    headers = {"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"}

    ours = dynamodb_direct.sigv4_headers(
        headers=headers,
        host=dynamodb_direct.host_header(endpoint),
        body=body,
        region="eu-west-1",
        credentials=credentials,
        now=MOMENT,
    )
    reference = AWSRequest("POST", endpoint + "/", data=body, headers=dict(headers))
    with mock.patch("botocore.auth.get_current_datetime", return_value=MOMENT.replace(tzinfo=None)):
        SigV4Auth(credentials, "dynamodb", "eu-west-1").add_auth(reference)

    assert ours["Authorization"] == reference.headers["Authorization"]
    assert ours["X-Amz-Date"] == reference.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == reference.headers.get("X-Amz-Security-Token")


def test_host_header_drops_only_the_default_port() -> None:
    assert dynamodb_direct.host_header("http://127.0.0.1:8123") == "127.0.0.1:8123"
    assert dynamodb_direct.host_header("https://dynamodb.us-east-1.amazonaws.com") == "dynamodb.us-east-1.amazonaws.com"
    assert dynamodb_direct.host_header("http://Example.com:80") == "example.com"
    assert dynamodb_direct.host_header("https://[::1]:8443") == "[::1]:8443"


@pytest.fixture
def both_paths(dynamo_table: dynamodb.TableBinding) -> Iterator[tuple[Any, Any, str]]:
    """(direct calls, botocore client, table name) on the test's table."""
    connection = dynamodb.table_connection().connection
    direct = connection._direct_calls()
    assert direct is not None
    yield direct, dynamodb.botocore_client(), dynamo_table.table_name


def _answer(parsed: dict[str, Any], *, written_by: str = "") -> Any:
    """The answer without its metadata; with ``written_by``, that path's key prefix made neutral."""

    def neutral(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: neutral(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [neutral(inner) for inner in value]
        if isinstance(value, str) and written_by:
            return value.replace(f"{written_by}#", "path#")
        return value

    return neutral({key: value for key, value in parsed.items() if key != "ResponseMetadata"})


RICH_ITEM = {
    "S": {"S": "text with \"quotes\", 'B': and unicode \u2713"},
    "N": {"N": "12.50"},
    "BOOL": {"BOOL": True},
    "NULL": {"NULL": True},
    "L": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"inner": {"SS": ["x", "y"]}}}]},
    "M": {"M": {"B": {"S": "a key named B is not a blob"}}},
    "NS": {"NS": ["1", "2.5"]},
}
BLOB_ITEM = {"blob": {"B": b"\x00\xffbinary"}, "blobs": {"BS": [b"one", b"two"]}}


def test_every_item_call_answers_as_botocore_does(both_paths: tuple[Any, Any, str]) -> None:
    direct, client, table = both_paths
    send = {"direct": direct.call, "botocore": client._make_api_call}

    def key(path: str, name: str) -> dict[str, Any]:
        return {"PK": {"S": f"{path}#{name}"}, "SK": {"S": "ITEM"}}

    def same_write(operation: str, params_for: Any) -> None:
        ours = direct.call(operation, params_for("direct"))
        theirs = client._make_api_call(operation, params_for("botocore"))
        assert _answer(ours, written_by="direct") == _answer(theirs, written_by="botocore"), operation
        assert ours["ResponseMetadata"]["HTTPStatusCode"] == 200

    def same_read(operation: str, params: dict[str, Any]) -> dict[str, Any]:
        ours = direct.call(operation, params)
        assert _answer(ours) == _answer(client._make_api_call(operation, params)), operation
        return ours

    for path in send:
        for name, extra in (("rich", RICH_ITEM), ("blobs", BLOB_ITEM)):
            send[path]("PutItem", {"TableName": table, "Item": {**key(path, name), **extra}})

    for path in send:
        for name in ("rich", "blobs"):
            got = same_read("GetItem", {"TableName": table, "Key": key(path, name), "ConsistentRead": True})
            assert got["Item"]["PK"]["S"] == f"{path}#{name}"
    blob = same_read("GetItem", {"TableName": table, "Key": key("direct", "blobs")})["Item"]
    assert blob["blob"]["B"] == b"\x00\xffbinary"  # written and read back by the direct path
    keys = [key(path, name) for path in send for name in ("rich", "blobs")]
    same_read("BatchGetItem", {"RequestItems": {table: {"Keys": keys, "ConsistentRead": True}}})
    query = {"KeyConditionExpression": "PK = :pk", "ExpressionAttributeValues": {":pk": {"S": "direct#blobs"}}}
    same_read("Query", {"TableName": table, **query})
    scan = {"FilterExpression": "SK = :sk", "ExpressionAttributeValues": {":sk": {"S": "ITEM"}}}
    assert same_read("Scan", {"TableName": table, **scan})["Count"] == 4

    same_write(
        "UpdateItem",
        lambda path: {
            "TableName": table,
            "Key": key(path, "rich"),
            "UpdateExpression": "SET #n = :n",
            "ExpressionAttributeNames": {"#n": "N"},
            "ExpressionAttributeValues": {":n": {"N": "13"}},
            "ReturnValues": "ALL_NEW",
        },
    )
    same_write("DeleteItem", lambda path: {"TableName": table, "Key": key(path, "blobs"), "ReturnValues": "ALL_OLD"})
    same_write(
        "BatchWriteItem",
        lambda path: {"RequestItems": {table: [{"PutRequest": {"Item": {**key(path, "batch"), **RICH_ITEM}}}]}},
    )


def test_errors_are_the_clients_exceptions(both_paths: tuple[Any, Any, str]) -> None:
    direct, client, table = both_paths
    params = {
        "TableName": table,
        "Item": {"PK": {"S": "P"}, "SK": {"S": "S"}, "v": {"S": "first"}},
        "ConditionExpression": "attribute_not_exists(PK)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    direct.call("PutItem", params)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as ours:
        direct.call("PutItem", params)
    with pytest.raises(client.exceptions.ConditionalCheckFailedException) as theirs:
        client._make_api_call("PutItem", params)
    assert ours.value.response["Error"] == theirs.value.response["Error"]
    # The item a failed condition returns is a modeled field of the error, parsed as botocore does.
    assert ours.value.response["Item"] == theirs.value.response["Item"] == params["Item"]

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        direct.call("GetItem", {"TableName": "no-such-table", "Key": {"PK": {"S": "P"}, "SK": {"S": "S"}}})


def test_the_engine_sends_item_calls_directly_and_the_switch_turns_that_off(
    dynamo_table: dynamodb.TableBinding,
) -> None:
    """Proof that the fast path is taken (otherwise every other test would pass without it)."""
    space = space_create(owner_id="owner", name="Direct")

    def botocore_item_calls() -> int:
        client = dynamodb.botocore_client()
        seen = []
        real = client._make_api_call

        def counting(operation: str, params: dict[str, Any]) -> Any:
            seen.append(operation)
            return real(operation, params)

        with mock.patch.object(client, "_make_api_call", counting):
            engine.invite_code_regenerate(space_id=space.id)
            engine.invite_code_resolve(typed_code=engine._space_or_missing(space.id).invite_code or "")
        return len([operation for operation in seen if operation in dynamodb_direct.DIRECT_OPERATIONS])

    assert botocore_item_calls() == 0
    dynamodb.bind_table(dataclasses.replace(dynamo_table, direct_calls=False))
    try:
        assert botocore_item_calls() >= 4  # read, claim, mapping, switch, claim read, batch read
    finally:
        dynamodb.bind_table(dynamo_table)


def test_the_clients_retry_policy_and_hooks_apply(both_paths: tuple[Any, Any, str]) -> None:
    direct, _client, table = both_paths
    refused: list[str] = []
    counted: list[str] = []

    def throttle_first_attempt(request: Any, **_: Any) -> Any:
        if not refused:
            refused.append(request.headers["X-Amz-Target"])
            return dynamodb_error(request, "ProvisionedThroughputExceededException", "slow down")
        return None

    with (
        client_hook("before-send.dynamodb", throttle_first_attempt),
        client_hook("before-call.dynamodb", lambda model, **_: counted.append(model.name)),
    ):
        answer = direct.call("PutItem", {"TableName": table, "Item": {"PK": {"S": "R"}, "SK": {"S": "S"}}})
    assert refused == ["DynamoDB_20120810.PutItem"]
    assert counted == ["PutItem"]  # one call, two attempts
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1


def test_an_unreachable_endpoint_is_botocores_connection_error(dynamo_table: dynamodb.TableBinding) -> None:
    closed = dataclasses.replace(dynamo_table, host=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    dynamodb.bind_table(closed)
    try:
        connection = dynamodb.table_connection().connection
        direct = connection._direct_calls()
        assert direct is not None
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            direct.call("GetItem", {"TableName": closed.table_name, "Key": {"PK": {"S": "P"}, "SK": {"S": "S"}}})
        with pytest.raises(dynamodb.DynamoUnavailable), dynamodb.translate_unreachable():
            engine._space_now("anything")
    finally:
        dynamodb.bind_table(dynamo_table)


def test_calls_through_a_proxy_stay_with_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert not dynamodb_direct.usable_for("https://dynamodb.us-east-1.amazonaws.com")
    monkeypatch.delenv("HTTPS_PROXY")
    assert dynamodb_direct.usable_for("https://dynamodb.us-east-1.amazonaws.com")


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    dynamo_table: dynamodb.TableBinding, moto_server: Any
) -> None:
    """One attempt per call: the second call succeeds only if the dead pooled connection is skipped."""
    port = free_port()
    forwarder = start_forwarder(port, moto_server.port)
    dynamodb.bind_table(dataclasses.replace(dynamo_table, host=f"http://127.0.0.1:{port}", max_attempts=1))
    try:
        space = space_create(owner_id="owner", name="Pooled")
        forwarder.kill()
        forwarder.wait()
        forwarder = start_forwarder(port, moto_server.port)
        regenerated = engine.invite_code_regenerate(space_id=space.id)
        assert regenerated.applied
    finally:
        forwarder.kill()
        forwarder.wait()
        dynamodb.bind_table(dynamo_table)


def test_a_server_that_never_answers_is_a_read_timeout(dynamo_table: dynamodb.TableBinding) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        dynamodb.bind_table(dataclasses.replace(dynamo_table, host=host, max_attempts=1, read_timeout=0.3))
        try:
            direct = dynamodb.table_connection().connection._direct_calls()
            assert direct is not None
            started = time.monotonic()
            with pytest.raises(botocore.exceptions.ReadTimeoutError):
                direct.call(
                    "GetItem", {"TableName": dynamo_table.table_name, "Key": {"PK": {"S": "P"}, "SK": {"S": "S"}}}
                )
            assert time.monotonic() - started < 3
            with pytest.raises(dynamodb.DynamoUnavailable), dynamodb.translate_unreachable():
                engine._space_now("anything")
        finally:
            dynamodb.bind_table(dynamo_table)


@pytest.mark.parametrize("status", [200, 502])
def test_an_answer_that_is_not_json_ends_as_on_botocores_path(dynamo_table: dynamodb.TableBinding, status: int) -> None:
    """A proxy's HTML page, say: both paths must end the same way, never with a stray ValueError."""

    def html_page(request: Any, **_: Any) -> Any:
        return answer(request, status, b"<html>Bad gateway</html>", content_type="text/html")

    dynamodb.bind_table(dataclasses.replace(dynamo_table, max_attempts=1))
    try:
        direct = dynamodb.table_connection().connection._direct_calls()
        assert direct is not None
        outcomes = []
        with client_hook("before-send.dynamodb", html_page):
            for send in (direct.call, dynamodb.botocore_client()._make_api_call):
                params = {"TableName": dynamo_table.table_name, "Key": {"PK": {"S": "P"}, "SK": {"S": "S"}}}
                try:
                    outcomes.append(("answer", _answer(send("GetItem", params))))
                except Exception as exc:
                    outcomes.append(("error", type(exc).__name__, getattr(exc, "response", {}).get("Error")))
    finally:
        dynamodb.bind_table(dynamo_table)
    assert outcomes[0] == outcomes[1]
