"""What every benchmark scenario shares: the seeded table, injected latency, call counting.

Latency and counting are botocore event hooks registered on *every* client
created in the process (PynamoDB's, boto3's), so the three backfills and the
engine are measured the same way, and no scenario needs a hook the product
offers for it.
"""

from __future__ import annotations

import itertools
import os
import random
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from devtools.embedded_dynamodb import EmbeddedDynamo
from devtools.embedded_dynamodb import start as start_embedded_dynamo
from spaces import keys

# Calls that write (the targets count these); every other call is a read.
WRITE_OPERATIONS = frozenset({"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})
SEED_TIMESTAMP = "2024-01-15T10:30:00"
SEED_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, "") or default)


class CallCounter:
    """DynamoDB API calls by operation (``before-call``: retries are not calls), and the items they write.

    ``items_written`` counts, per operation, the actions of each
    TransactWriteItems and the requests of each BatchWriteItem (one for the
    other writes), from ``before-parameter-build``, which also fires once a call.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items_written: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def count_items(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name not in WRITE_OPERATIONS:
            return
        if model.name == "TransactWriteItems":
            items = len(params.get("TransactItems", ()))
        elif model.name == "BatchWriteItem":
            items = sum(len(requests) for requests in params.get("RequestItems", {}).values())
        else:
            items = 1
        with self._lock:
            self.items_written[model.name] += items

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
            self.items_written.clear()

    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op not in WRITE_OPERATIONS)

    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op in WRITE_OPERATIONS)


class Latency:
    """A model of DynamoDB's network round trip: each request waits ``seconds``, the CPU does not work.

    A ``before-send`` hook (once per HTTP attempt); ``seconds`` may change
    between rounds of a scenario.
    """

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds

    def __call__(self, **_: Any) -> None:
        if self.seconds > 0:
            time.sleep(self.seconds)


def instrument_every_client(*, latency: Latency | None, counter: CallCounter | None) -> None:
    """Register the latency and counting hooks on each botocore client created from now on.

    Every client (PynamoDB's thread-local sessions, boto3's) is made by
    ``botocore.session.Session.create_client``; wrapping it reaches them all
    without a hook in the product. Call it before the first client is created.
    """
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        if latency is not None:
            client.meta.events.register("before-send.dynamodb", latency)
        if counter is not None:
            client.meta.events.register("before-call.dynamodb", counter)
            client.meta.events.register("before-parameter-build.dynamodb", counter.count_items)
        return client

    botocore.session.Session.create_client = create_client


def peak_rss_mib() -> float:
    """Peak resident memory of this process since it started (exec), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries that high-water mark across
    ``execve``, so a scenario child spawned by the parent reported the
    parent's peak (the seeding, which holds every item of the table) whenever
    that was higher than its own. ``VmHWM`` belongs to the child's own
    address space, which exec replaces.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB; other systems differ


def cpu_seconds() -> float:
    """CPU time of this process (all its threads), not of the moto server."""
    return time.process_time()


# --- the seeded table ------------------------------------------------------------------------


def item_size_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it (attribute names plus values; docs "Item sizes and formats").

    Strings and binaries by their bytes, a number by about one byte per two
    significant digits plus one, a boolean or null one byte, a list or map 3
    bytes plus one per element and its contents.
    """
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.strip("-").replace(".", "").strip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: element}) for element in data)
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in data)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in data.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def raw_client(endpoint: str, *, pool: int = 32, parameter_validation: bool = True) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(
            max_pool_connections=pool,
            retries={"mode": "standard", "max_attempts": 10},
            parameter_validation=parameter_validation,
        ),
    )


@dataclass(frozen=True)
class PlannedSpace:
    space_id: str
    name: str
    code: str | None
    legacy: bool = False  # the earlier system's code: lower-case hex, a mapping and no claim


def plan_spaces(
    count: int, *, seed: int = 20261124, share_without_code: float = 0.5, share_legacy: float = 0.0
) -> Iterator[PlannedSpace]:
    """The same spaces for every scenario: ids, names and codes from a seeded generator."""
    rng = random.Random(seed)
    for n in range(count):
        space_id = f"{rng.getrandbits(128):032x}"
        draw = rng.random()  # share_legacy=0 draws the same numbers as before it existed
        if draw < share_without_code:
            yield PlannedSpace(space_id, f"Space {n}", None)
        elif draw < share_without_code + share_legacy:
            yield PlannedSpace(space_id, f"Space {n}", f"{rng.getrandbits(32):08x}", legacy=True)
        else:
            yield PlannedSpace(space_id, f"Space {n}", "".join(rng.choice(SEED_ALPHABET) for _ in range(8)))


def _items_for(space: PlannedSpace) -> list[dict[str, Any]]:
    owner = f"owner-{space.space_id[:8]}"
    item: dict[str, Any] = {
        "PK": {"S": keys.space_pk(space.space_id)},
        "SK": {"S": keys.SPACE_METADATA_SK},
        "id": {"S": space.space_id},
        "name": {"S": space.name},
        "description": {"S": ""},
        "type": {"S": "workspace"},
        "is_public": {"BOOL": False},
        "owner_id": {"S": owner},
        "created_at": {"S": SEED_TIMESTAMP},
        "updated_at": {"S": SEED_TIMESTAMP},
    }
    items = [
        item,
        {
            "PK": {"S": keys.space_pk(space.space_id)},
            "SK": {"S": keys.member_sk(owner)},
            "user_id": {"S": owner},
            "role": {"S": "owner"},
            "joined_at": {"S": SEED_TIMESTAMP},
            "GSI1PK": {"S": keys.user_gsi1pk(owner)},
            "GSI1SK": {"S": keys.space_pk(space.space_id)},
        },
    ]
    if space.code:
        item["invite_code"] = {"S": space.code}
        items.append(
            {
                "PK": {"S": keys.invite_pk(space.code)},
                "SK": {"S": keys.invite_sk(space.space_id)},
                "space_id": {"S": space.space_id},
                "created_at": {"S": SEED_TIMESTAMP},
            }
        )
    if space.code and not space.legacy:
        items.append(
            {
                "PK": {"S": keys.code_claim_pk(space.code)},
                "SK": {"S": keys.CODE_CLAIM_SK},
                "space_id": {"S": space.space_id},
                "code": {"S": space.code},
                "created_at": {"S": SEED_TIMESTAMP},
            }
        )
    return items


def create_seeded_table(
    endpoint: str,
    table_name: str,
    count: int,
    *,
    threads: int = 8,
    share_legacy: float = 0.0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Create the table and BatchWrite the spaces from parallel threads, streamed (a million spaces fit).

    Legacy codes recorded, as on a fresh table, unless ``share_legacy`` of the
    spaces hold the earlier system's codes (no claims: the flag would be false).
    ``progress`` hears the items of each batch written.
    """
    from spaces.dynamodb import table_schema

    client = raw_client(endpoint, pool=threads + 2)
    started = time.monotonic()
    client.create_table(**table_schema(table_name))
    tally = Counter[str]()

    def items() -> Iterator[dict[str, Any]]:
        if not share_legacy:
            yield {
                "PK": {"S": keys.table_flag_pk(keys.LEGACY_CODES_RECORDED_FLAG)},
                "SK": {"S": keys.TABLE_FLAG_SK},
                "set_at": {"S": SEED_TIMESTAMP},
                "set_by": {"S": "benchmark"},
            }
        for space in plan_spaces(count, share_legacy=share_legacy):
            tally["without_code"] += space.code is None
            tally["legacy"] += space.legacy
            yield from _items_for(space)

    def write(batch: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {table_name: [{"PutRequest": {"Item": item}} for item in batch]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if progress is not None:
            progress(len(batch))

    stream = items()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        in_flight: set[Future[None]] = set()
        while batch := list(itertools.islice(stream, 25)):  # DynamoDB's limit per BatchWriteItem
            tally["items"] += len(batch)
            tally["bytes"] += sum(item_size_bytes(item) for item in batch)
            if len(in_flight) >= 4 * threads:  # a bounded queue: the table is never all in memory
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
            in_flight.add(pool.submit(write, batch))
        for future in in_flight:
            future.result()
    return {
        "spaces": count,
        "spaces_without_code": tally["without_code"],
        **({"spaces_with_legacy_code": tally["legacy"]} if share_legacy else {}),
        "items": tally["items"],
        # What a full Scan reads (its read units), before any scenario wrote to the table.
        "bytes": tally["bytes"],
        "seconds": round(time.monotonic() - started, 2),
    }


def count_spaces_without_code(endpoint: str, table_name: str) -> int:
    client = raw_client(endpoint)
    missing = 0
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "FilterExpression": "SK = :meta AND attribute_not_exists(invite_code)",
        "ExpressionAttributeValues": {":meta": {"S": keys.SPACE_METADATA_SK}},
        "Select": "COUNT",
    }
    while True:
        page = client.scan(**kwargs)
        missing += page["Count"]
        if "LastEvaluatedKey" not in page:
            return missing
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def drop_table(endpoint: str, table_name: str) -> None:
    raw_client(endpoint).delete_table(TableName=table_name)


def server_cpu_seconds(server: EmbeddedDynamo) -> float:
    """User + system CPU time of the embedded DynamoDB (its gunicorn master and worker), from /proc."""
    from devtools.gunicorn_process import child_pids

    total = 0.0
    for pid in (server.process.pid, *child_pids(server.process.pid)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def start_moto_server(*, threads: int = 16) -> EmbeddedDynamo:
    """The same embedded DynamoDB the tests and ``make run`` use (devtools/embedded_dynamodb.py)."""
    return start_embedded_dynamo(threads=threads)
