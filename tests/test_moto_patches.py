"""devtools.moto_patches: each scenario runs on unpatched moto (the reference) and on the patched one.

The scenarios run in-process (``moto.mock_aws``, a fresh backend each run) on
tables of a handful of items; the last test shows over HTTP that the embedded
server runs the patched code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

from devtools import moto_patches

pytestmark = pytest.mark.moto_only("tests moto's own code and devtools/moto_patches.py")
REGION = "us-east-1"
MOTO_TRANSACT_WRITE_ITEMS = DynamoDBBackend.__dict__["transact_write_items"]
MOTO_HANDLER = DynamoHandler.__dict__["transact_write_items"]
MOTO_QUERY = Table.__dict__["query"]


@pytest.fixture(autouse=True)
def unpatched_moto() -> Iterator[None]:
    """Each test starts on moto's own code; whatever it applies is undone afterwards."""
    was_applied = moto_patches.is_applied()
    moto_patches.undo()
    yield
    moto_patches.undo()
    if was_applied:
        moto_patches.apply()


def is_moto_code() -> bool:
    return (
        DynamoDBBackend.__dict__["transact_write_items"] is MOTO_TRANSACT_WRITE_ITEMS
        and DynamoHandler.__dict__["transact_write_items"] is MOTO_HANDLER
        and Table.__dict__["query"] is MOTO_QUERY
    )


_clients: dict[str, Any] = {}


def client(region: str = REGION) -> Any:
    """A boto3 client of the current moto session."""
    if region not in _clients:
        _clients[region] = boto3.client("dynamodb", region_name=region)
    return _clients[region]


@contextmanager
def fresh_moto() -> Iterator[None]:
    """``mock_aws()``: new, empty backends."""
    _clients.clear()
    with mock_aws():
        yield
    _clients.clear()


def backend(region: str = REGION) -> DynamoDBBackend:
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region]


def reference_and_patched(scenario: Callable[[], Any]) -> tuple[Any, Any]:
    """``scenario()`` on a fresh unpatched moto, then on a fresh patched one."""
    results = []
    for patch in (nullcontext, moto_patches.patched):
        with patch(), fresh_moto():
            assert is_moto_code() == (patch is nullcontext)
            results.append(scenario())
    assert is_moto_code()
    return results[0], results[1]


def same_in_both(scenario: Callable[[], Any]) -> Any:
    reference, patched = reference_and_patched(scenario)
    assert patched == reference
    return patched


# --- tables and items --------------------------------------------------------------------


def create_table(
    name: str,
    *,
    range_key: str | None = "SK",
    range_type: str = "S",
    gsi: bool = False,
    streams: bool = False,
) -> None:
    keys = [{"AttributeName": "PK", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "PK", "AttributeType": "S"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": range_type})
    extra: dict[str, Any] = {}
    if gsi:
        attributes += [
            {"AttributeName": "GSI1PK", "AttributeType": "S"},
            {"AttributeName": "GSI1SK", "AttributeType": "S"},
        ]
        extra["GlobalSecondaryIndexes"] = [
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ]
    if streams:
        extra["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client().create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST", **extra
    )


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | str) -> dict[str, str]:
    return {"N": str(value)}


def key(pk: str, sk: str | None = None) -> dict[str, Any]:
    return {"PK": s(pk)} if sk is None else {"PK": s(pk), "SK": s(sk)}


SEED = [
    {
        **key("A", "1"),
        "GSI1PK": s("G"),
        "GSI1SK": s("a1"),
        "n": n(5),
        "m": {"M": {"k": s("v"), "nested": {"M": {"x": n(1)}}, "l": {"L": [s("one"), n(2)]}}},
        "tags": {"SS": ["x", "y"]},
    },
    {**key("A", "2"), "GSI1PK": s("G"), "GSI1SK": s("a2"), "n": n(1)},
    {**key("B", "1"), "GSI1PK": s("G"), "GSI1SK": s("b1"), "flag": {"BOOL": True}},
    {**key("C", "1"), "note": s("no GSI keys")},
]


def seed(table: str, items: list[dict[str, Any]]) -> None:
    for item in items:
        client().put_item(TableName=table, Item=item)


def table_state(name: str, *, gsi: bool = False) -> dict[str, Any]:
    """Everything a cancelled transaction must leave as it was, as plain data."""
    table = backend().get_table(name)
    items: dict[tuple[str, ...], Any] = {}
    for hash_key, partition in table.items.items():
        if table.range_key_attr:
            for range_key, item in partition.items():
                items[(hash_key.value, range_key.value)] = item.to_json()
        else:
            items[(hash_key.value,)] = partition.to_json()  # type: ignore[attr-defined]  # moto types a partition dict; here an Item
    state = {
        "partitions": sorted(hash_key.value for hash_key in table.items),
        "items": items,
        "item_count": client().describe_table(TableName=name)["Table"]["ItemCount"],
        "scan": client().scan(TableName=name)["Items"],
        "streams": None
        if table.stream_shard is None
        else [stream_record(r.to_json()) for r in table.stream_shard.items],
    }
    if gsi:
        answer = client().query(
            TableName=name,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :g",
            ExpressionAttributeValues={":g": s("G")},
        )
        state["gsi"] = answer["Items"]
    return state


def stream_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record without what differs from run to run (its id and time)."""
    images = {name: record["dynamodb"].get(name) for name in ("Keys", "NewImage", "OldImage")}
    return {"eventName": record["eventName"], **images}


def cancellation(error: ClientError) -> dict[str, Any]:
    return {
        "code": error.response["Error"]["Code"],
        "message": error.response["Error"]["Message"],
        "reasons": error.response.get("CancellationReasons"),
    }


def failed_call(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ClientError) as caught:
        call()
    return cancellation(caught.value)


# --- the patch itself -------------------------------------------------------------------


def test_apply_is_idempotent_and_undo_restores_moto() -> None:
    assert is_moto_code()
    moto_patches.apply()
    installed = (
        DynamoDBBackend.__dict__["transact_write_items"],
        DynamoHandler.__dict__["transact_write_items"],
        Table.__dict__["query"],
    )
    assert installed == (
        moto_patches.transact_write_items,
        moto_patches.handle_transact_write_items,
        moto_patches.query,
    )
    moto_patches.apply()
    assert (
        DynamoDBBackend.__dict__["transact_write_items"],
        DynamoHandler.__dict__["transact_write_items"],
        Table.__dict__["query"],
    ) == installed
    moto_patches.undo()
    assert is_moto_code()
    with moto_patches.patched():
        assert not is_moto_code()
    assert is_moto_code()


# --- 1. TransactWriteItems: a cancelled transaction changes nothing -----------------------

WRITES = [
    # a new item in a new partition
    {"Put": {"TableName": "t", "Item": {**key("NEW", "1"), "GSI1PK": s("G"), "GSI1SK": s("new")}}},
    # a new item in an existing partition
    {"Put": {"TableName": "t", "Item": {**key("A", "3"), "GSI1PK": s("G"), "GSI1SK": s("a3")}}},
    # a nested map attribute, a GSI key and an ADD on a number, in place
    {
        "Update": {
            "TableName": "t",
            "Key": key("A", "1"),
            "UpdateExpression": "SET m.k = :v, m.nested.x = :x, GSI1SK = :g REMOVE tags ADD n :one",
            "ExpressionAttributeValues": {":v": s("changed"), ":x": n(42), ":g": s("zz"), ":one": n(1)},
        }
    },
    {"Delete": {"TableName": "t", "Key": key("B", "1")}},
    # an update that creates its item, in a new partition
    {
        "Update": {
            "TableName": "t",
            "Key": key("D", "9"),
            "UpdateExpression": "SET z = :z",
            "ExpressionAttributeValues": {":z": s("created")},
        }
    },
    # an overwrite of a whole item
    {"Put": {"TableName": "t", "Item": {**key("A", "2"), "replaced": {"BOOL": True}}}},
]
FAILING_CHECK = {
    "ConditionCheck": {"TableName": "t", "Key": key("C", "1"), "ConditionExpression": "attribute_not_exists(PK)"}
}


@pytest.mark.parametrize("position", [0, 3, len(WRITES)], ids=["first", "middle", "last"])
def test_a_failing_condition_anywhere_changes_no_item(position: int) -> None:
    actions = [*WRITES[:position], FAILING_CHECK, *WRITES[position:]]

    def scenario() -> dict[str, Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        before = table_state("t", gsi=True)
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        after = table_state("t", gsi=True)
        assert after == before
        return {"error": error, "state": after}

    result = same_in_both(scenario)
    expected = [{"Code": "None"}] * len(actions)
    expected[position] = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
    assert result["error"]["code"] == "TransactionCanceledException"
    assert result["error"]["reasons"] == expected
    assert len(result["state"]["gsi"]) == 3


def test_a_failing_condition_on_a_write_changes_no_item() -> None:
    conditional_delete = {
        "Delete": {
            "TableName": "t",
            "Key": key("A", "2"),
            "ConditionExpression": "n = :wrong",
            "ExpressionAttributeValues": {":wrong": n(7)},
        }
    }

    def scenario() -> dict[str, Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        before = table_state("t", gsi=True)
        actions = [WRITES[0], WRITES[2], WRITES[3], conditional_delete]
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        assert table_state("t", gsi=True) == before
        return error

    assert same_in_both(scenario)["reasons"][-1]["Code"] == "ConditionalCheckFailed"


def test_the_same_transaction_without_the_failing_condition_applies() -> None:
    """The writes of the scenarios above, all applied: what moto leaves, the patch leaves."""

    def scenario() -> dict[str, Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        client().transact_write_items(TransactItems=WRITES)
        return table_state("t", gsi=True)

    state = same_in_both(scenario)
    assert ("NEW", "1") in state["items"]
    assert ("B", "1") not in state["items"]
    assert state["items"][("A", "1")]["Attributes"]["n"] == n(6)


def test_cancellation_reasons_per_action_in_order() -> None:
    actions = [
        {"Put": {"TableName": "t", "Item": {**key("E", "1"), "v": s("x")}}},
        {
            "Update": {
                "TableName": "t",
                "Key": key("A", "1"),
                "UpdateExpression": "ADD n :one",
                "ConditionExpression": "n > :big",
                "ExpressionAttributeValues": {":one": n(1), ":big": n(100)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": key("A", "2"),
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "NONE",
            }
        },
        {"Delete": {"TableName": "t", "Key": key("C", "1")}},
        {
            # fails on an item that does not exist: ALL_OLD has nothing to return
            "ConditionCheck": {
                "TableName": "t",
                "Key": key("missing", "1"),
                "ConditionExpression": "attribute_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
        {
            "Put": {
                "TableName": "t",
                "Item": {**key("B", "1"), "v": s("y")},
                "ConditionExpression": "attribute_not_exists(PK)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        },
    ]

    def scenario() -> dict[str, Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        before = table_state("t", gsi=True)
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        assert table_state("t", gsi=True) == before
        return error

    error = same_in_both(scenario)
    failed = {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
    assert error["reasons"] == [
        {"Code": "None"},
        {**failed, "Item": SEED[0]},
        failed,
        {"Code": "None"},
        failed,
        {**failed, "Item": SEED[2]},
    ]
    assert error["message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, ConditionalCheckFailed, ConditionalCheckFailed, None, ConditionalCheckFailed, ConditionalCheckFailed]"
    )


def test_other_errors_are_captured_by_type_name() -> None:
    """An error that is no validation error cancels the transaction with its type as the code."""

    def scenario() -> str:
        create_table("t")
        seed("t", SEED[:2])
        before = table_state("t")
        with pytest.raises(TransactionCanceledException) as caught:
            backend().transact_write_items(
                [
                    {"Put": {"TableName": "t", "Item": {**key("E", "1")}}},
                    {"Frobnicate": {"TableName": "t", "Key": key("A", "1")}},
                    {"Put": {"TableName": "t", "Item": {"PK": s("no sort key")}}},
                    {"Put": {"TableName": "nope", "Item": {**key("E", "2")}}},
                ]
            )
        assert table_state("t") == before
        return caught.value.description

    description = same_in_both(scenario)
    assert '"Code": "ValueError"' in description
    assert '"Code": "KeyError"' in description
    assert '"Code": "ResourceNotFoundException"' in description


@pytest.mark.parametrize("range_key", ["SK", None], ids=["hash-and-range", "hash-only"])
def test_items_touched_by_a_cancelled_transaction_are_restored_exactly(range_key: str | None) -> None:
    def k(pk: str, sk: str) -> dict[str, Any]:
        return key(pk, sk if range_key else None)

    seed_items = [
        {**k("A", "1"), "n": n(5), "m": {"M": {"k": s("v"), "nested": {"M": {"x": n(1)}}}}, "set": {"NS": ["1", "2"]}},
        {**k("B", "1"), "v": s("to delete")},
        {**k("C", "1"), "v": s("to overwrite")},
        {**k("F", "1"), "v": s("the condition's")},
    ]
    if range_key:
        seed_items.append({**k("A", "2"), "v": s("sibling")})
    actions = [
        {"Put": {"TableName": "t", "Item": {**k("NEW", "1"), "v": s("created")}}},
        {
            "Update": {
                "TableName": "t",
                "Key": k("A", "1"),
                "UpdateExpression": "SET m.k = :v, m.nested.y = :y ADD n :one, #set :three",
                "ExpressionAttributeNames": {"#set": "set"},
                "ExpressionAttributeValues": {":v": s("w"), ":y": n(2), ":one": n(1), ":three": {"NS": ["3"]}},
            }
        },
        {"Delete": {"TableName": "t", "Key": k("B", "1")}},
        {"Put": {"TableName": "t", "Item": {**k("C", "1"), "v": s("overwritten")}}},
        {
            "Update": {
                "TableName": "t",
                "Key": k("NEW2", "1"),
                "UpdateExpression": "ADD c :one",
                "ExpressionAttributeValues": {":one": n(1)},
            }
        },
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": k("A", "1"),
                "ConditionExpression": "n = :six",
                "ExpressionAttributeValues": {":six": n(6)},  # true after the ADD, false before it
            }
        },
    ]

    def scenario() -> dict[str, Any]:
        create_table("t", range_key=range_key)
        seed("t", seed_items)
        before = table_state("t")
        items_before = copy.deepcopy(backend().get_table("t").items)
        # The ConditionCheck is a second action on A/1: a ValidationException, after five actions applied
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        after = table_state("t")
        assert after == before
        assert backend().get_table("t").items == items_before
        assert {"NEW", "NEW2"}.isdisjoint(after["partitions"])
        assert len(after["scan"]) == after["item_count"] == len(seed_items)

        # The same writes, cancelled by a condition on another item
        failing = {
            "ConditionCheck": {"TableName": "t", "Key": k("F", "1"), "ConditionExpression": "attribute_not_exists(v)"}
        }
        cancelled = failed_call(lambda: client().transact_write_items(TransactItems=[*actions[:5], failing]))
        assert table_state("t") == before
        assert backend().get_table("t").items == items_before
        return {"error": error, "cancelled": cancelled, "state": after}

    result = same_in_both(scenario)
    assert result["error"]["code"] == "ValidationException"
    assert result["error"]["message"] == "Transaction request cannot include multiple operations on one item"
    assert result["cancelled"]["code"] == "TransactionCanceledException"


def test_a_cancelled_transaction_adds_no_stream_record() -> None:
    def scenario() -> dict[str, Any]:
        create_table("t", streams=True)
        seed("t", SEED)
        before = table_state("t")
        failed_call(lambda: client().transact_write_items(TransactItems=[*WRITES, FAILING_CHECK]))
        assert table_state("t") == before
        client().transact_write_items(TransactItems=WRITES)
        return table_state("t")

    state = same_in_both(scenario)
    assert [record["eventName"] for record in state["streams"][len(SEED) :]] == [
        "INSERT",
        "INSERT",
        "MODIFY",
        "REMOVE",
        "INSERT",  # moto: an Update that creates its item records two INSERTs
        "INSERT",
        "MODIFY",
    ]


@pytest.mark.parametrize("second_key", [key("B", "1"), {"SK": s("1"), "PK": s("B")}], ids=["same", "reordered"])
def test_two_actions_on_one_item_are_rejected_and_change_nothing(second_key: dict[str, Any]) -> None:
    """Since moto 5.2 the check ignores the order of the key's attributes, so no item is touched twice."""
    actions = [
        WRITES[0],
        {"Delete": {"TableName": "t", "Key": key("B", "1")}},
        {"ConditionCheck": {"TableName": "t", "Key": second_key, "ConditionExpression": "attribute_exists(PK)"}},
    ]

    def scenario() -> dict[str, Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        before = table_state("t", gsi=True)
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        assert table_state("t", gsi=True) == before
        return error

    assert same_in_both(scenario) == {
        "code": "ValidationException",
        "message": "Transaction request cannot include multiple operations on one item",
        "reasons": None,
    }


def test_more_than_100_actions_are_rejected() -> None:
    actions = [{"Put": {"TableName": "t", "Item": {**key("P", str(i))}}} for i in range(101)]

    def scenario() -> dict[str, Any]:
        create_table("t")
        seed("t", SEED)
        before = table_state("t")
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        assert table_state("t") == before
        client().transact_write_items(TransactItems=actions[:100])
        assert table_state("t")["item_count"] == len(SEED) + 100
        return error

    error = same_in_both(scenario)
    assert error["code"] == "ValidationException"
    assert "Member must have length less than or equal to 100" in error["message"]


def test_two_operations_in_one_action_roll_back_what_was_applied() -> None:
    """Where moto leaves the earlier actions applied, the patch rolls them back (same error)."""
    actions = [
        {"Put": {"TableName": "t", "Item": {**key("E", "1")}}},
        {
            "Put": {"TableName": "t", "Item": {**key("E", "2")}},
            "Delete": {"TableName": "t", "Key": key("A", "1")},
        },
    ]

    def scenario() -> dict[str, Any]:
        create_table("t")
        seed("t", SEED)
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        return {"error": error, "items": table_state("t")["items"]}

    reference, patched = reference_and_patched(scenario)
    assert patched["error"] == reference["error"]
    assert patched["error"]["message"] == "TransactItems can only contain one of Check, Put, Update or Delete"
    assert ("E", "1") in reference["items"]  # moto's partial write
    assert ("E", "1") not in patched["items"]
    assert len(patched["items"]) == len(SEED)


def test_a_table_named_by_its_arn_is_rolled_back() -> None:
    """moto backs up tables by name only; the patch restores the items whatever names the table."""

    def scenario() -> dict[str, Any]:
        create_table("t")
        seed("t", SEED)
        arn = client().describe_table(TableName="t")["Table"]["TableArn"]
        actions = [
            {"Put": {"TableName": arn, "Item": {**key("E", "1")}}},
            {"ConditionCheck": {**FAILING_CHECK["ConditionCheck"], "TableName": arn}},
        ]
        error = failed_call(lambda: client().transact_write_items(TransactItems=actions))
        return {"error": error, "items": table_state("t")["items"]}

    reference, patched = reference_and_patched(scenario)
    assert patched["error"] == reference["error"]
    assert ("E", "1") in reference["items"]  # moto's partial write
    assert ("E", "1") not in patched["items"]


# --- 2. ClientRequestToken --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(moto_patches, "clock", clock)
    return clock


@pytest.fixture
def counter_table() -> Iterator[None]:
    with moto_patches.patched(), fresh_moto():
        create_table("t")
        seed("t", [{**key("X", "1"), "counter": n(0)}])
        yield


def counter_update(by: int, table: str = "t") -> list[dict[str, Any]]:
    """The TransactItems of a transaction adding ``by`` to the counter item."""
    return [
        {
            "Update": {
                "TableName": table,
                "Key": key("X", "1"),
                "UpdateExpression": "ADD #c :by",
                "ExpressionAttributeNames": {"#c": "counter"},
                "ExpressionAttributeValues": {":by": n(by)},
            }
        }
    ]


def increment(token: str | None, *, by: int = 1, table: str = "t", region: str = REGION) -> dict[str, Any]:
    parameters: dict[str, Any] = {"TransactItems": counter_update(by, table)}
    if token is not None:
        parameters["ClientRequestToken"] = token
    return client(region).transact_write_items(**parameters)


def counter(region: str = REGION) -> int:
    item = client(region).get_item(TableName="t", Key=key("X", "1"))["Item"]
    return int(item["counter"]["N"])


def test_moto_ignores_the_token() -> None:
    with fresh_moto():
        create_table("t")
        seed("t", [{**key("X", "1"), "counter": n(0)}])
        increment("token-1")
        increment("token-1")
        increment("token-1", by=5)
        assert counter() == 7


@pytest.mark.usefixtures("counter_table")
def test_same_token_same_request_is_applied_once(fake_clock: FakeClock) -> None:
    first = increment("token-1")
    fake_clock.now += 599
    again = increment("token-1")
    assert counter() == 1
    first.pop("ResponseMetadata")
    again.pop("ResponseMetadata")
    assert again == first
    increment("token-2")
    assert counter() == 2


@pytest.mark.usefixtures("counter_table")
def test_same_token_other_request_is_a_mismatch() -> None:
    increment("token-1")
    dynamodb = client()
    with pytest.raises(dynamodb.exceptions.IdempotentParameterMismatchException) as caught:
        dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=counter_update(2))
    assert caught.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another optional parameter is another request too
    with pytest.raises(dynamodb.exceptions.IdempotentParameterMismatchException):
        dynamodb.transact_write_items(
            ClientRequestToken="token-1", ReturnConsumedCapacity="TOTAL", TransactItems=counter_update(1)
        )
    assert counter() == 1


@pytest.mark.usefixtures("counter_table")
def test_a_token_older_than_the_window_is_new(fake_clock: FakeClock) -> None:
    increment("token-1")
    fake_clock.now += moto_patches.IDEMPOTENCY_WINDOW_SECONDS
    increment("token-1")
    assert counter() == 2
    # its window starts again from the second completion; another request is no mismatch once expired
    fake_clock.now += moto_patches.IDEMPOTENCY_WINDOW_SECONDS - 1
    increment("token-1")
    assert counter() == 2
    fake_clock.now += 1
    increment("token-1", by=10)
    assert counter() == 12


@pytest.mark.usefixtures("counter_table")
def test_a_cancelled_transactions_token_is_not_remembered() -> None:
    actions = [
        {
            "Update": {
                "TableName": "t",
                "Key": key("X", "1"),
                "UpdateExpression": "ADD #c :one",
                "ExpressionAttributeNames": {"#c": "counter"},
                "ExpressionAttributeValues": {":one": n(1)},
            }
        },
        {"ConditionCheck": {"TableName": "t", "Key": key("GATE", "1"), "ConditionExpression": "attribute_exists(PK)"}},
    ]
    dynamodb = client()
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=actions)
    assert counter() == 0
    dynamodb.put_item(TableName="t", Item=key("GATE", "1"))
    dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=actions)
    dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=actions)
    assert counter() == 1


@pytest.mark.usefixtures("counter_table")
def test_botocore_retry_after_a_lost_answer_is_applied_once() -> None:
    """botocore fills in the token itself and resends it when it retries."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    attempts_made: list[int] = []

    def lose_the_first_answer(attempts: int, **_: Any) -> float | None:
        attempts_made.append(attempts)
        return 0 if attempts == 1 else None  # retry at once, as after a timeout

    dynamodb.meta.events.register_first("needs-retry.dynamodb.TransactWriteItems", lose_the_first_answer)
    tokens: list[bytes] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.TransactWriteItems", lambda params, **_: tokens.append(params["body"])
    )
    dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": "t",
                    "Key": key("X", "1"),
                    "UpdateExpression": "ADD #c :one",
                    "ExpressionAttributeNames": {"#c": "counter"},
                    "ExpressionAttributeValues": {":one": n(1)},
                }
            }
        ]
    )
    assert attempts_made == [1, 2]
    assert b"ClientRequestToken" in tokens[0]
    assert counter() == 1
    # Without a token of its own, each call is a new transaction
    increment(None)
    increment(None)
    assert counter() == 3


def test_tokens_are_remembered_per_backend() -> None:
    with moto_patches.patched(), fresh_moto():
        for region in (REGION, "eu-west-1"):
            client(region).create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
                AttributeDefinitions=[
                    {"AttributeName": "PK", "AttributeType": "S"},
                    {"AttributeName": "SK", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        increment("token-1")
        increment("token-1", by=5, region="eu-west-1")
        assert counter() == 1
        assert counter("eu-west-1") == 5


@pytest.mark.usefixtures("counter_table")
def test_remembered_tokens_stay_bounded(fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto_patches, "MAX_REMEMBERED_TOKENS", 3)
    for i in range(5):
        increment(f"token-{i}")
        fake_clock.now += 1
    remembered = moto_patches.completed_transactions(backend())
    assert list(remembered) == ["token-2", "token-3", "token-4"]
    fake_clock.now += moto_patches.IDEMPOTENCY_WINDOW_SECONDS
    increment("token-5")
    assert list(remembered) == ["token-5"]
    assert counter() == 6
    backend().reset()
    assert "client_request_tokens" not in vars(backend())


# --- 3. Query ---------------------------------------------------------------------------

QUERY_SEED = [
    {**key(pk, sk), "n": n(i), "even": {"BOOL": i % 2 == 0}, "blob": s(f"{pk}-{sk}-{'x' * i}")}
    for i, (pk, sk) in enumerate(
        (pk, sk)
        for pk in ("A", "B", "C")
        for sk in ("a#1", "a#2", "a#10", "b#1", "b#2", "c", "c#3", "d")
        if not (pk == "C" and sk.startswith("a"))
    )
]

QUERIES: dict[str, dict[str, Any]] = {
    "partition": {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("B")}},
    "one item": {
        "KeyConditionExpression": "PK = :p AND SK = :s",
        "ExpressionAttributeValues": {":p": s("B"), ":s": s("b#1")},
    },
    "begins_with": {
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :pre)",
        "ExpressionAttributeValues": {":p": s("A"), ":pre": s("a#")},
    },
    "between": {
        "KeyConditionExpression": "#pk = :p AND #sk BETWEEN :lo AND :hi",
        "ExpressionAttributeNames": {"#pk": "PK", "#sk": "SK"},
        "ExpressionAttributeValues": {":p": s("A"), ":lo": s("a#2"), ":hi": s("c")},
    },
    "less than": {
        "KeyConditionExpression": "PK = :p AND SK < :s",
        "ExpressionAttributeValues": {":p": s("C"), ":s": s("c#3")},
    },
    "at least, backwards": {
        "KeyConditionExpression": "PK = :p AND SK >= :s",
        "ExpressionAttributeValues": {":p": s("A"), ":s": s("b")},
        "ScanIndexForward": False,
    },
    "backwards": {
        "KeyConditionExpression": "PK = :p",
        "ExpressionAttributeValues": {":p": s("A")},
        "ScanIndexForward": False,
    },
    "filter": {
        "KeyConditionExpression": "PK = :p",
        "FilterExpression": "even = :t AND n > :min",
        "ExpressionAttributeValues": {":p": s("A"), ":t": {"BOOL": True}, ":min": n(0)},
    },
    "count": {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("C")}, "Select": "COUNT"},
    "count with filter": {
        "KeyConditionExpression": "PK = :p",
        "FilterExpression": "even = :t",
        "ExpressionAttributeValues": {":p": s("B"), ":t": {"BOOL": False}},
        "Select": "COUNT",
    },
    "projection": {
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :pre)",
        "ProjectionExpression": "SK, #n",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {":p": s("B"), ":pre": s("b")},
    },
    "limit": {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("A")}, "Limit": 3},
    "missing partition": {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("nope")}},
    "missing item": {
        "KeyConditionExpression": "PK = :p AND SK = :s",
        "ExpressionAttributeValues": {":p": s("A"), ":s": s("zzz")},
    },
}


def answer(response: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in response.items() if name != "ResponseMetadata"}


def all_pages(table: str, parameters: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    pages = []
    start: dict[str, Any] | None = None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = answer(client().query(TableName=table, Limit=page_size, **parameters, **extra))
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


@pytest.mark.parametrize("name", list(QUERIES))
def test_query_answers_as_moto_does(name: str) -> None:
    def scenario() -> dict[str, Any]:
        create_table("q")
        seed("q", QUERY_SEED)
        partitions = sorted(hash_key.value for hash_key in backend().get_table("q").items)
        result = answer(client().query(TableName="q", **QUERIES[name]))
        assert sorted(hash_key.value for hash_key in backend().get_table("q").items) == partitions
        return result

    result = same_in_both(scenario)
    if name.startswith("missing"):
        assert result["Count"] == 0
        assert result["Items"] == []


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_query_pages_as_moto_does(forward: bool, page_size: int) -> None:
    parameters = [
        {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("A")}},
        {
            "KeyConditionExpression": "PK = :p AND begins_with(SK, :pre)",
            "ExpressionAttributeValues": {":p": s("B"), ":pre": s("b")},
        },
        {
            "KeyConditionExpression": "PK = :p",
            "FilterExpression": "even = :t",
            "ExpressionAttributeValues": {":p": s("C"), ":t": {"BOOL": True}},
        },
    ]

    def scenario() -> list[list[dict[str, Any]]]:
        create_table("q")
        seed("q", QUERY_SEED)
        return [all_pages("q", {**p, "ScanIndexForward": forward}, page_size) for p in parameters]

    pages = same_in_both(scenario)
    everything = [item for page in pages[0] for item in page["Items"]]
    assert len(everything) == 8
    assert [item["SK"]["S"] for item in everything] == sorted((i["SK"]["S"] for i in everything), reverse=not forward)


def test_query_on_a_numeric_sort_key_and_on_a_hash_only_table() -> None:
    def scenario() -> list[Any]:
        create_table("num", range_key="SK", range_type="N")
        seed("num", [{"PK": s(pk), "SK": n(v)} for pk in "AB" for v in ("10", "2", "-3", "2.5", "100", "0")])
        create_table("hash", range_key=None)
        seed("hash", [{"PK": s(pk), "v": n(i)} for i, pk in enumerate("ABCD")])
        results: list[Any] = []
        for parameters in (
            {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("A")}},
            {
                "KeyConditionExpression": "PK = :p AND SK BETWEEN :lo AND :hi",
                "ExpressionAttributeValues": {":p": s("B"), ":lo": n(0), ":hi": n(10)},
                "ScanIndexForward": False,
            },
        ):
            results.append(answer(client().query(TableName="num", **parameters)))
        results.append(
            all_pages("num", {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": s("A")}}, 4)
        )
        for pk in ("C", "nope"):
            results.append(
                answer(
                    client().query(
                        TableName="hash", KeyConditionExpression="PK = :p", ExpressionAttributeValues={":p": s(pk)}
                    )
                )
            )
        assert DynamoType(s("nope")) not in backend().get_table("hash").items
        return results

    results = same_in_both(scenario)
    assert [item["SK"]["N"] for item in results[0]["Items"]] == ["-3", "0", "2", "2.5", "10", "100"]
    assert [item["PK"]["S"] for item in results[3]["Items"]] == ["C"]
    assert results[4]["Count"] == 0


def test_index_query_answers_as_moto_does() -> None:
    def scenario() -> list[Any]:
        create_table("t", gsi=True)
        seed("t", SEED)
        return [
            all_pages(
                "t",
                {
                    "IndexName": "GSI1",
                    "KeyConditionExpression": "GSI1PK = :g AND begins_with(GSI1SK, :a)",
                    "ExpressionAttributeValues": {":g": s("G"), ":a": s("a")},
                    "ScanIndexForward": forward,
                },
                1,
            )
            for forward in (True, False)
        ]

    same_in_both(scenario)


def test_a_query_for_a_missing_partition_creates_none() -> None:
    with moto_patches.patched(), fresh_moto():
        create_table("q")
        seed("q", QUERY_SEED)
        table = backend().get_table("q")
        partitions = dict(table.items)
        for parameters in QUERIES.values():
            client().query(
                TableName="q",
                **{
                    **parameters,
                    "ExpressionAttributeValues": {**parameters["ExpressionAttributeValues"], ":p": s("nope")},
                },
            )
        assert dict(table.items) == partitions
        assert DynamoType(s("nope")) not in table.items


# --- scale: what a transaction copies and a query compares, whatever the table's size --------


def fill(table: str, partitions: int, per_partition: int) -> None:
    db = backend()
    for p in range(partitions):
        for i in range(per_partition):
            db.put_item(table, {**key(f"P{p:04d}", f"S{i:04d}"), "n": n(i), "m": {"M": {"a": s("x"), "b": n(i)}}})


SCALE_TRANSACTION = [
    {"Put": {"TableName": "t", "Item": {**key("P0000", "new"), "v": s("x")}}},
    {
        "Update": {
            "TableName": "t",
            "Key": key("P0001", "S0001"),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": n(1)},
        }
    },
    {"Delete": {"TableName": "t", "Key": key("P0000", "S0002")}},
]


def deep_copies(monkeypatch: pytest.MonkeyPatch, partitions: int, *, cancel: bool) -> int:
    """How many objects ``copy.deepcopy`` copies (at every level) in one 3-action transaction."""
    with fresh_moto():
        create_table("t")
        fill("t", partitions, 10)
        actions = [*SCALE_TRANSACTION]
        if cancel:
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": key("P0001", "S0003"),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        real_deepcopy = copy.deepcopy
        copies = 0

        def counting_deepcopy(x: Any, memo: dict[int, Any] | None = None, _nil: Any = None) -> Any:
            nonlocal copies
            if memo is not None:  # a copy within a copy: counted by the outer one
                return real_deepcopy(x, memo)
            memo = {}
            copied = real_deepcopy(x, memo)
            copies += len(memo)  # every object copied, at every level (and deepcopy's keep-alive list)
            return copied

        with monkeypatch.context() as patch:
            patch.setattr(copy, "deepcopy", counting_deepcopy)
            try:
                backend().transact_write_items(actions)
            except TransactionCanceledException:
                assert cancel
            else:
                assert not cancel
        assert len(backend().get_table("t")) == partitions * 10  # a Put and a Delete, or nothing
        return copies


@pytest.mark.parametrize("cancel", [False, True], ids=["applied", "cancelled"])
def test_a_transaction_copies_the_same_whatever_the_table_size(monkeypatch: pytest.MonkeyPatch, cancel: bool) -> None:
    reference_small = deep_copies(monkeypatch, 2, cancel=cancel)
    reference_larger = deep_copies(monkeypatch, 20, cancel=cancel)
    assert reference_larger > 5 * reference_small  # moto copies the table, once per action
    with moto_patches.patched():
        small = deep_copies(monkeypatch, 2, cancel=cancel)
        large = deep_copies(monkeypatch, 200, cancel=cancel)  # 2,000 items
    assert small == large
    assert small < reference_small


def key_comparisons(monkeypatch: pytest.MonkeyPatch, partitions: int) -> tuple[int, int, int]:
    """How many DynamoType comparisons, and Table.all_items calls, one partition's Query makes."""
    with fresh_moto():
        create_table("t")
        fill("t", partitions, 10)
        counts = {"compared": 0, "all_items": 0}

        def counting(method: Callable[..., Any], what: str) -> Callable[..., Any]:
            def counted(*args: Any, **kwargs: Any) -> Any:
                counts[what] += 1
                return method(*args, **kwargs)

            return counted

        with monkeypatch.context() as patch:
            for name in ("__eq__", "__lt__", "__le__", "__gt__", "__ge__"):
                patch.setattr(DynamoType, name, counting(getattr(DynamoType, name), "compared"))
            patch.setattr(Table, "all_items", counting(Table.all_items, "all_items"))
            items, scanned, _ = backend().query("t", s("P0001"), "BEGINS_WITH", [s("S000")], None, None, True, None)  # type: ignore[arg-type]  # None, as moto's handler passes
        assert len(items) == scanned == 10
        return counts["compared"], counts["all_items"], len(backend().get_table("t").items)


def test_a_query_compares_the_same_whatever_the_table_size(monkeypatch: pytest.MonkeyPatch) -> None:
    reference_small, calls, _ = key_comparisons(monkeypatch, 2)
    reference_larger, _, _ = key_comparisons(monkeypatch, 20)
    assert calls == 1
    assert reference_larger > 5 * reference_small  # moto lists and sorts the whole table
    with moto_patches.patched():
        small, small_calls, _ = key_comparisons(monkeypatch, 2)
        large, large_calls, partitions = key_comparisons(monkeypatch, 200)  # 2,000 items
    assert small == large
    assert small_calls == large_calls == 0
    assert partitions == 200


# --- the embedded server runs the patched code ------------------------------------------


def test_the_embedded_server_is_patched() -> None:
    from devtools.embedded_dynamodb import start

    server = start()
    try:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="t", Item={**key("X", "1"), "counter": n(0)})
        add_one = {
            "Update": {
                "TableName": "t",
                "Key": key("X", "1"),
                "UpdateExpression": "ADD #c :one",
                "ExpressionAttributeNames": {"#c": "counter"},
                "ExpressionAttributeValues": {":one": n(1)},
            }
        }
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException) as caught:
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {**key("NEW", "1")}}},
                    add_one,
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": key("GATE", "1"),
                            "ConditionExpression": "attribute_exists(PK)",
                        }
                    },
                ]
            )
        assert [r["Code"] for r in caught.value.response["CancellationReasons"]] == [
            "None",
            "None",
            "ConditionalCheckFailed",
        ]
        assert dynamodb.scan(TableName="t")["Items"] == [{**key("X", "1"), "counter": n(0)}]

        dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=[add_one])
        dynamodb.transact_write_items(ClientRequestToken="token-1", TransactItems=[add_one])
        with pytest.raises(dynamodb.exceptions.IdempotentParameterMismatchException):
            dynamodb.transact_write_items(
                ClientRequestToken="token-1",
                TransactItems=[add_one, {"Put": {"TableName": "t", "Item": {**key("NEW", "1")}}}],
            )
        item = dynamodb.get_item(TableName="t", Key=key("X", "1"))["Item"]
        assert item["counter"] == n(1)
        assert dynamodb.describe_table(TableName="t")["Table"]["ItemCount"] == 1
    finally:
        server.stop()
