"""Patches to moto 5.2.6's DynamoDB, written so they could be proposed upstream.

The embedded DynamoDB (``devtools.embedded_dynamodb``) is moto's server mode;
:func:`apply` installs these three changes in its process before the WSGI app
is built. :func:`undo` and :func:`patched` exist for the tests, which compare
each scenario against unpatched moto.

1. TransactWriteItems costs O(actions), not O(table)
   ------------------------------------------------
   ``DynamoDBBackend.transact_write_items`` backs up, before applying anything,
   every table the transaction names with ``copy.deepcopy(table)``, once per
   action, and on failure puts the copies back in ``self.tables``. A
   transaction therefore costs O(actions x items in its tables), whether it
   succeeds or not. The replacement below is moto's function with the same
   validation, order of evaluation and errors (``TooManyTransactionsException``
   over 100 actions, ``MultipleTransactionsException`` for two actions on one
   item, ``TransactWriteSingleOpException``, a ``MockValidationException``
   rolled back and re-raised, ``ConditionalCheckFailed`` with the old item when
   ``ReturnValuesOnConditionCheckFailure`` is ``ALL_OLD``, other exceptions
   captured by type name, ``TransactionCanceledException`` with one reason per
   action, in order). Only its backup differs: just before an action reads its
   item, it records a deep copy of that one item (or its absence, and whether
   its partition existed in ``table.items``: moto's ``Table.get_item`` creates
   an empty partition in the ``defaultdict`` when it looks up a missing one),
   and the length of the table's stream records. The copy must be taken
   before the action, since ``update_item`` mutates the ``Item`` in place. On
   failure the records are restored in reverse order, and a partition the
   transaction created is removed again.

   Two differences from moto, both where moto fails to roll back at all:
   moto raises ``TransactWriteSingleOpException`` outside its ``try``, so the
   actions before the faulty one stay applied; here it is raised inside it and
   rolls back like every other ``MockValidationException``. And moto backs up
   only tables named by name (``table_name in self.tables``), so a transaction
   naming a table by its ARN was never rolled back; here it is. One thing is
   not restored: the position of a deleted item in its partition's ``dict``
   (a restored item is inserted last). Nothing in moto reads that order: the
   readers (``all_items``, ``has_idx_items`` followed by ``sorted_items``,
   ``__len__``) sort or count.

2. ClientRequestToken makes TransactWriteItems idempotent
   ------------------------------------------------------
   DynamoDB: "Providing a ClientRequestToken makes the call to
   TransactWriteItems idempotent... A client request token is valid for 10
   minutes after the first request that uses it is completed... If you submit
   a request with the same client token but a change in other parameters
   within the 10-minute idempotency window, DynamoDB returns an
   IdempotentParameterMismatch exception." moto ignores the token, so a retry
   after a lost answer applies the transaction twice; botocore fills the token
   in by itself (it is an ``idempotencyToken`` in the service model) and reuses
   it on its own retries. ``DynamoHandler.transact_write_items`` now
   remembers, per backend (account and region), the token of each successful
   transaction with a SHA-256 of the request's other parameters and the time it
   completed. A repeat with the same parameters within
   :data:`IDEMPOTENCY_WINDOW_SECONDS` answers what the first call answered and
   applies nothing; with other parameters it answers
   ``IdempotentParameterMismatchException`` (HTTP 400), which botocore parses
   into ``client.exceptions.IdempotentParameterMismatchException``. A cancelled
   or rejected transaction's token is not remembered, so a retry is evaluated
   again. Tokens expire after the window, and at most
   :data:`MAX_REMEMBERED_TOKENS` are kept (the oldest go first). Not emulated:
   ``TransactionInProgressException`` for a repeat that arrives while the first
   call is still running (the embedded server applies one request at a time).

3. Query on the base table costs O(items in the partition), not O(table)
   ---------------------------------------------------------------------
   ``Table.query`` takes its candidates from ``self.all_items()``, which lists
   and sorts every item of the table, then keeps those whose hash key matches.
   For a base-table query (no ``index_name``) the candidates are exactly the
   items of ``self.items.get(hash_key)``. The replacement calls moto's own
   ``query`` on a thin view of the table whose ``all_items()`` returns only that
   partition, sorted as moto sorts; everything else is the table's. It uses
   ``.get``, so a Query for a missing partition creates none. Index queries
   are unchanged.

Measured in-process with moto 5.1.20 (5.2.6 still copies whole tables in
TransactWriteItems and lists the whole table for a Query), CPython 3.11, 2 CPUs,
on one table of 20,000 items, 200 partitions of 100 (each item: two key
strings, a number, a small map); the minimum of 5 runs unpatched, of 20 patched. "backend" calls
``DynamoDBBackend`` directly; "boto3" goes through a boto3 client under
``mock_aws`` (serialisation and moto's responses layer included):

============================================================  =========  =======
                                                              unpatched  patched
============================================================  =========  =======
TransactWriteItems, 3 actions (Put, Update, Delete), backend  7.4-8.2 s  0.7 ms
the same, cancelled by a failing ConditionCheck, backend      5.6-9.4 s  0.8 ms
TransactWriteItems, 3 actions, boto3                          7.3-7.9 s  1.8 ms
the same, cancelled, boto3                                    6.3-6.4 s  2.0 ms
Query of one partition (100 items), backend                   91-94 ms   9.4 ms
Query of one partition (100 items), boto3                     95-100 ms  15 ms
============================================================  =========  =======

The patched Query's remaining cost is moto's own, proportional to the items
returned: about 80 % of it is the ``copy.deepcopy`` of the results.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
from moto.dynamodb.responses import DynamoHandler

IDEMPOTENCY_WINDOW_SECONDS = 600.0
"""How long a ClientRequestToken is remembered after its transaction completed (DynamoDB: 10 minutes)."""

MAX_REMEMBERED_TOKENS = 100_000
"""At most this many tokens are remembered per backend; beyond it the oldest is forgotten first."""

clock: Callable[[], float] = time.monotonic
"""The clock of the idempotency window, in seconds; tests replace it."""

_moto_query = Table.query
_moto_handle_transact_write_items = DynamoHandler.transact_write_items


# --- 1. TransactWriteItems: back up the touched items, not the tables -----------------------


@dataclass
class _ItemBefore:
    """One item as it was before an action of the transaction touched it."""

    table: Table
    hash_key: DynamoType
    range_key: DynamoType | None
    partition_existed: bool
    item: Item | None  # a deep copy, or None if there was no item


class _TouchedItems:
    """The backup of a transaction: the previous version of each item it touches, in order."""

    def __init__(self) -> None:
        self.items: list[_ItemBefore] = []
        self.streams: dict[int, tuple[StreamShard, list[StreamRecord], int]] = {}

    def remember(self, backend: DynamoDBBackend, table_name: str, key: dict[str, Any]) -> None:
        """Record the item at ``key`` before the action that is about to read, then write it."""
        try:
            table = backend.get_table(table_name)
            hash_key, range_key = backend.get_keys_value(table, key)
        except Exception:
            # backend.get_item(table_name, key), the action's next step, raises the same error
            # before it touches any item: there is nothing to back up.
            return
        partition: Any = table.items.get(hash_key)  # an Item if the table has no range key (moto types a dict)
        item = partition.get(range_key) if range_key is not None and partition is not None else partition
        self.items.append(_ItemBefore(table, hash_key, range_key, partition is not None, copy.deepcopy(item)))
        shard = table.stream_shard
        if shard is not None and id(table) not in self.streams:
            self.streams[id(table)] = (shard, shard.items, len(shard.items))

    def restore(self) -> None:
        """Put every touched item back as it was, the last touched first."""
        for before in reversed(self.items):
            items = before.table.items
            if before.range_key is None:
                if before.item is None:
                    items.pop(before.hash_key, None)
                else:
                    items[before.hash_key] = before.item  # type: ignore[assignment]  # moto types a partition dict
                continue
            if before.item is not None:
                items[before.hash_key][before.range_key] = before.item
            elif before.hash_key in items:
                items[before.hash_key].pop(before.range_key, None)
            if not before.partition_existed:
                items.pop(before.hash_key, None)
        for shard, records, count in self.streams.values():
            # StreamShard.add may have replaced its list after handing records to Lambda.
            del records[count:]
            shard.items = records


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``DynamoDBBackend.transact_write_items``; the changes are marked ``patch:``.

    Longer than our functions usually are on purpose: it stays line for line
    moto's, so that the patch reads as a diff against it and could be proposed
    upstream as one.
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # Create a backup in case any of the transactions fail
    # patch: moto deep-copied here, once per action, every table the actions name. Its reads
    # remain, so that a malformed action fails as it did; the backup is of the touched items.
    for item in transact_items:
        _, op = next(iter(item.items()))
        table_name = op.get("TableName")
        if table_name and table_name in self.tables:
            continue
    touched = _TouchedItems()

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []  # [(Code, Message, Item), ..]
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        try:
            # Check transact writes are not performing multiple operations on the same item
            # patch: inside the try, so that the actions before this one are rolled back.
            if len(list(item.keys())) > 1:
                raise TransactWriteSingleOpException

            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            # patch: back up this item before get_item (which may create its partition) and the write.
            touched.remember(self, table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                attrs = op["Item"]
                self.put_item(
                    table_name,
                    attrs,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                update_expression = op["UpdateExpression"]
                self.update_item(
                    table_name,
                    key,
                    update_expression=update_expression,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            # Rollback to the original state, and reraise the error
            touched.restore()  # patch
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]  # copied from moto, ignored there too
        except Exception as e:
            # For other exceptions, capture their details
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]  # copied from moto, ignored there too

    if any(code is not None for code, _, _ in errors):
        # Rollback to the original state, and reraise the errors
        touched.restore()  # patch
        raise TransactionCanceledException(errors)


# --- 2. ClientRequestToken ------------------------------------------------------------------


class IdempotentParameterMismatchException(DynamodbException):
    error_type = ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException"

    def __init__(self) -> None:
        super().__init__(
            IdempotentParameterMismatchException.error_type,
            message="DynamoDB rejected the request because you retried a request with a different payload "
            "but with an idempotent token that was already used.",
        )


@dataclass(frozen=True)
class _CompletedTransaction:
    fingerprint: str
    completed_at: float
    response: ActionResult


def _fingerprint(body: dict[str, Any]) -> str:
    """A digest of the request's parameters other than its token."""
    parameters = {name: value for name, value in body.items() if name != "ClientRequestToken"}
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def completed_transactions(backend: DynamoDBBackend) -> OrderedDict[str, _CompletedTransaction]:
    """The backend's remembered tokens, oldest first (created on first use; ``reset()`` forgets them)."""
    tokens: OrderedDict[str, _CompletedTransaction] = vars(backend).setdefault("client_request_tokens", OrderedDict())
    return tokens


def _forget_expired(tokens: OrderedDict[str, _CompletedTransaction], now: float) -> None:
    while tokens:
        oldest = next(iter(tokens.values()))
        if now - oldest.completed_at < IDEMPOTENCY_WINDOW_SECONDS and len(tokens) <= MAX_REMEMBERED_TOKENS:
            return
        tokens.popitem(last=False)


def handle_transact_write_items(self: DynamoHandler) -> ActionResult:
    """``DynamoHandler.transact_write_items``, idempotent for a repeated ClientRequestToken."""
    token = self.body.get("ClientRequestToken")
    if not token:
        return _moto_handle_transact_write_items(self)
    tokens = completed_transactions(self.dynamodb_backend)
    _forget_expired(tokens, clock())
    fingerprint = _fingerprint(self.body)
    completed = tokens.get(token)
    if completed is not None:
        if completed.fingerprint != fingerprint:
            raise IdempotentParameterMismatchException()
        return completed.response
    response = _moto_handle_transact_write_items(self)  # raises if cancelled: the token is not remembered
    tokens[token] = _CompletedTransaction(fingerprint, clock(), response)
    _forget_expired(tokens, clock())
    return response


# --- 3. Query: the partition's items, not the table's ---------------------------------------


class _OnePartition:
    """A table as ``Table.query`` sees it, whose ``all_items()`` is one partition's items."""

    def __init__(self, table: Table, hash_key: DynamoType) -> None:
        self._table = table
        self._hash_key = hash_key

    def all_items(self) -> list[Item]:
        # Table.all_items, for one hash key; .get() creates no partition.
        hash_set: Any = self._table.items.get(self._hash_key)  # an Item without a range key (moto types a dict)
        if hash_set is None:
            return []
        items: list[Item] = list(hash_set.values()) if self._table.range_key_attr else [hash_set]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


def query(
    self: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    """moto's ``Table.query``; a base-table query considers only the items of its partition."""
    table: Any = self if index_name or hash_key is None else _OnePartition(self, hash_key)
    return _moto_query(
        table,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward,
        projection_expressions,
        index_name,
        consistent_read,
        filter_expression,
        **filter_kwargs,
    )


# --- Installing them ------------------------------------------------------------------------

_PATCHES: tuple[tuple[type, str, Callable[..., Any]], ...] = (
    (DynamoDBBackend, "transact_write_items", transact_write_items),
    (DynamoHandler, "transact_write_items", handle_transact_write_items),
    (Table, "query", query),
)
_originals: dict[tuple[type, str], Any] = {}


def is_applied() -> bool:
    return bool(_originals)


def apply() -> None:
    """Install the patches in moto's classes; applying them again changes nothing."""
    if is_applied():
        return
    for owner, name, replacement in _PATCHES:
        _originals[(owner, name)] = owner.__dict__[name]
        setattr(owner, name, replacement)


def undo() -> None:
    """Put moto's own methods back (for tests)."""
    for (owner, name), original in _originals.items():
        setattr(owner, name, original)
    _originals.clear()


@contextmanager
def patched() -> Iterator[None]:
    """The patches applied within the block, as they were after it (for tests)."""
    was_applied = is_applied()
    apply()
    try:
        yield
    finally:
        if not was_applied:
            undo()
