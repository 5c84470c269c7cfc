"""One benchmark scenario in a fresh process: ``python -m benchmarks.scenario NAME``.

The parent (``python -m benchmarks``) seeds the table and passes, in the
environment: ``BENCH_ENDPOINT``, ``BENCH_TABLE``, ``BENCH_LATENCY_MS`` and the
scenario's sizes. The last line printed is ``RESULT <json>``. Running each
scenario in its own process keeps peak RSS and CPU time per scenario.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from benchmarks.common import (
    CallCounter,
    Latency,
    cpu_seconds,
    env_float,
    env_int,
    instrument_every_client,
    peak_rss_mib,
    plan_spaces,
    raw_client,
)

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "")
TABLE = os.environ.get("BENCH_TABLE", "")
LATENCY_SECONDS = env_float("BENCH_LATENCY_MS", 10.0) / 1000


def setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "lifestyle_spaces.settings"
    os.environ["DJANGO_DEBUG"] = "1"
    os.environ["DYNAMODB_HOST"] = ENDPOINT
    os.environ["DYNAMODB_TABLE"] = TABLE
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    # moto's Scan walks the whole table on every page (segments included), so a
    # page of a 60,000-item table can take seconds under load; real DynamoDB
    # answers in milliseconds. A long read timeout keeps retries from piling up.
    os.environ.setdefault("DYNAMODB_READ_TIMEOUT", "120")
    import django

    django.setup()


def measured(counter: CallCounter, run: Callable[[], object]) -> dict[str, Any]:
    times_before = os.times()
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    run()
    cpu_after, wall_after = cpu_seconds(), time.perf_counter()
    times_after = os.times()
    return {
        "wall_seconds": round(wall_after - wall_before, 3),
        "cpu_seconds": round(cpu_after - cpu_before, 3),
        # cpu_seconds split: Python (user) and the kernel (system: sockets, futexes of the GIL, sleeps).
        "cpu_user_seconds": round(times_after.user - times_before.user, 3),
        "cpu_system_seconds": round(times_after.system - times_before.system, 3),
        "calls": dict(counter.calls),
        # Items written per write operation: the actions of each transaction, the requests of each batch.
        "items_written": dict(counter.items_written),
        "reads": counter.reads(),
        "writes": counter.writes(),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


# --- the guide's algorithm ---------------------------------------------------------------------


def guide_baseline() -> dict[str, Any]:
    """The guide's script: scan everything into memory, then regenerate one space after another."""
    import boto3
    from boto3.dynamodb.conditions import Attr

    from spaces import keys

    counter = CallCounter()
    instrument_every_client(latency=Latency(LATENCY_SECONDS), counter=counter)
    table = boto3.resource(
        "dynamodb",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    ).Table(TABLE)

    def regenerate_invite_code(space_id: str) -> None:
        response = table.get_item(Key={"PK": keys.space_pk(space_id), "SK": keys.SPACE_METADATA_SK})
        old_code = response["Item"].get("invite_code")
        new_code = secrets.token_urlsafe(6)
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        table.update_item(
            Key={"PK": keys.space_pk(space_id), "SK": keys.SPACE_METADATA_SK},
            UpdateExpression="SET invite_code = :code, updated_at = :now",
            ExpressionAttributeValues={":code": new_code, ":now": now},
        )
        if old_code:
            with contextlib.suppress(Exception):
                table.delete_item(Key={"PK": keys.invite_pk(old_code), "SK": keys.invite_sk(space_id)})
        table.put_item(
            Item={
                "PK": keys.invite_pk(new_code),
                "SK": keys.invite_sk(space_id),
                "space_id": space_id,
                "created_at": now,
            }
        )

    def run() -> None:
        spaces: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("PK").begins_with(keys.SPACE_PREFIX) & Attr("SK").eq(keys.SPACE_METADATA_SK)
        }
        while True:
            page = table.scan(**kwargs)
            spaces.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for space in spaces:
            if not space.get("invite_code"):
                regenerate_invite_code(space["id"])

    return measured(counter, run)


# --- ours ----------------------------------------------------------------------------------


def ours() -> dict[str, Any]:
    """``manage.py backfill_invite_codes`` with its defaults, in process.

    Its log goes to a file, as an operator's ``> backfill.log`` would: a
    StringIO would keep every line in this process's memory.
    """
    setup_django()
    counter = CallCounter()
    instrument_every_client(latency=Latency(LATENCY_SECONDS), counter=counter)
    from django.conf import settings
    from django.core.management import call_command

    with tempfile.TemporaryFile("w+", encoding="utf-8") as output:
        result = measured(counter, lambda: call_command("backfill_invite_codes", stdout=output))
        output.seek(0)
        last_lines = collections.deque(output, maxlen=8)
    from spaces.dynamodb import SCAN_PAGE_SIZE as PAGE_SIZE

    result["workers"] = settings.BACKFILL_WORKERS
    result["segments"] = 1  # one scanner
    result["page_size"] = PAGE_SIZE
    result["summary"] = [line.rstrip("\n").split(" - ", 2)[-1] for line in last_lines]
    return result


# --- the floor: plain boto3, only the calls our method needs, same concurrency ------------------


def floor() -> dict[str, Any]:
    """The same parallel scan, then one TransactWriteItems per 33 spaces; nothing else.

    Per space the transaction holds what ours sends: the claim of a new code
    (``attribute_not_exists``), its ``INVITE#`` mapping, and the switch of the
    space's code conditional on the space existing without one (returning the
    old item on failure). A cancelled transaction (a code collision, a space
    that got a code meanwhile: neither happens on this table) draws new codes
    for the spaces that can still take one and is sent again.
    """
    from spaces import keys

    segments = 1  # one scanner, as ours
    workers = env_int("BACKFILL_WORKERS", 8)
    page_size = 1000  # spaces.dynamodb.SCAN_PAGE_SIZE
    per_transaction = 33  # three actions a space; DynamoDB takes 100 per transaction
    counter = CallCounter()
    instrument_every_client(latency=Latency(LATENCY_SECONDS), counter=counter)
    # The generic client settings ours has: PynamoDB turns botocore's parameter
    # validation off (about 6% of a call's instructions), so the floor does too.
    client = raw_client(ENDPOINT, pool=workers + segments + 2, parameter_validation=False)
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    cancelled_error = client.exceptions.TransactionCanceledException

    def actions(space_id: str, code: str, now: str) -> list[dict[str, Any]]:
        return [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "PK": {"S": keys.code_claim_pk(code)},
                        "SK": {"S": keys.CODE_CLAIM_SK},
                        "space_id": {"S": space_id},
                        "code": {"S": code},
                        "created_at": {"S": now},
                    },
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": {
                        "PK": {"S": keys.invite_pk(code)},
                        "SK": {"S": keys.invite_sk(space_id)},
                        "space_id": {"S": space_id},
                        "created_at": {"S": now},
                    },
                }
            },
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": {"PK": {"S": keys.space_pk(space_id)}, "SK": {"S": keys.SPACE_METADATA_SK}},
                    "UpdateExpression": "SET invite_code = :code, updated_at = :now",
                    "ConditionExpression": "attribute_exists(PK) AND attribute_not_exists(invite_code)",
                    "ExpressionAttributeValues": {":code": {"S": code}, ":now": {"S": now}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]

    def fix(chunk: list[str]) -> None:
        pending = chunk
        for _attempt in range(5):
            if not pending:
                return
            now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            codes: dict[str, str] = {}
            for space_id in pending:
                code = "".join(secrets.choice(alphabet) for _ in range(8))
                while code in codes.values():
                    code = "".join(secrets.choice(alphabet) for _ in range(8))
                codes[space_id] = code
            items = [action for space_id in pending for action in actions(space_id, codes[space_id], now)]
            try:
                client.transact_write_items(TransactItems=items)
                return
            except cancelled_error as exc:
                reasons = exc.response.get("CancellationReasons", [])
                # Drop the spaces whose switch failed (they have a code now); the rest draw again.
                pending = [
                    space_id
                    for index, space_id in enumerate(pending)
                    if len(reasons) <= 3 * index + 2 or reasons[3 * index + 2].get("Code") != "ConditionalCheckFailed"
                ]
        raise RuntimeError(f"floor: {len(pending)} spaces kept being cancelled")

    def scan_segment(pool: ThreadPoolExecutor, segment: int) -> None:
        kwargs: dict[str, Any] = {
            "TableName": TABLE,
            "Limit": page_size,
            "FilterExpression": "SK = :meta",
            "ProjectionExpression": "PK, SK, id, #name, invite_code",
            "ExpressionAttributeNames": {"#name": "name"},
            "ExpressionAttributeValues": {":meta": {"S": keys.SPACE_METADATA_SK}},
        }
        if segments > 1:
            kwargs.update(Segment=segment, TotalSegments=segments)
        page: dict[str, Any] | None = client.scan(**kwargs)
        while page is not None:
            missing = [item["id"]["S"] for item in page["Items"] if "invite_code" not in item]
            futures: list[Future[None]] = [
                pool.submit(fix, missing[start : start + per_transaction])
                for start in range(0, len(missing), per_transaction)
            ]
            upcoming = None
            if "LastEvaluatedKey" in page:
                upcoming = client.scan(**kwargs, ExclusiveStartKey=page["LastEvaluatedKey"])
            for future in futures:
                future.result()
            page = upcoming

    def run() -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=segments) as scanners:
            for future in [scanners.submit(scan_segment, pool, segment) for segment in range(segments)]:
                future.result()

    result = measured(counter, run)
    result["workers"] = workers
    result["segments"] = segments
    result["spaces_per_transaction"] = per_transaction
    return result


# --- the engine's hot operations on a big table -------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]

    return {
        "p50_ms": round(at(0.50) * 1000, 2),
        "p95_ms": round(at(0.95) * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "count": len(ordered),
    }


def engine() -> dict[str, Any]:
    """p50/p95 of regenerate, create, join and resolve on a table of BENCH_ENGINE_SPACES spaces.

    Two rounds: without injected latency (where the table's size would show)
    and with BENCH_LATENCY_MS per call.
    """
    setup_django()
    latency = Latency(0.0)  # switched between rounds
    counter = CallCounter()
    instrument_every_client(latency=latency, counter=counter)
    from invites.joining import invite_code_resolve, space_join_with_code
    from invites.services import invite_code_regenerate, legacy_codes_recorded, space_create

    ops_per_kind = env_int("BENCH_ENGINE_OPS", 100)
    planned = list(plan_spaces(env_int("BENCH_ENGINE_SPACES", 50_000), share_without_code=0.1))
    with_code = [space for space in planned if space.code]
    # Disjoint spaces per operation, so no operation sees another's change.
    # Joins get half, so that even on a table of 500 spaces each join meets a
    # space nobody joined yet (seeded spaces have no member count: the first
    # join counts the members, one Query). A small table has fewer spaces than
    # regenerations and resolutions: a space is then regenerated again (each
    # regeneration reads it first) or resolved again.
    pools = {"join": with_code[0::2], "regenerate": with_code[1::4], "resolve": with_code[3::4]}
    # Warm the connection and the cached table flag, so the first operation measured pays for neither.
    invite_code_resolve(typed_code=with_code[0].code or "")
    legacy_codes_recorded()

    def pick(kind: str, n: int) -> Any:
        pool = pools[kind]
        return pool[n % len(pool)]

    def timed(kinds: dict[str, Callable[[int], object]], offset: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, operation in kinds.items():
            samples = []
            counter.clear()
            for n in range(offset, offset + ops_per_kind):
                started = time.perf_counter()
                operation(n)
                samples.append(time.perf_counter() - started)
            out[kind] = {
                **percentiles(samples),
                "calls_per_op": round(sum(counter.calls.values()) / ops_per_kind, 2),
                "calls_per_op_by_operation": {
                    op: round(count / ops_per_kind, 2) for op, count in sorted(counter.calls.items())
                },
                "items_written_per_op": round(sum(counter.items_written.values()) / ops_per_kind, 2),
            }
        return out

    operations: dict[str, Callable[[int], object]] = {
        "invite_code_regenerate": lambda n: invite_code_regenerate(
            space_id=pick("regenerate", n).space_id, actor_id="bench"
        ),
        "space_create": lambda n: space_create(owner_id="bench-owner", name=f"Bench {uuid.uuid4().hex[:6]}"),
        "space_join_with_code": lambda n: space_join_with_code(
            typed_code=pick("join", n).code or "", user_id=f"joiner-{uuid.uuid4().hex}"
        ),
        "invite_code_resolve": lambda n: invite_code_resolve(
            typed_code=pick("resolve", n).code or "", user_id="visitor"
        ),
    }
    rounds: dict[str, Any] = {}
    for round_index, latency_ms in enumerate((0.0, LATENCY_SECONDS * 1000)):
        latency.seconds = latency_ms / 1000
        rounds[f"latency_{latency_ms:g}ms"] = timed(operations, round_index * ops_per_kind)
    return {
        "rounds": rounds,
        "ops_per_kind": ops_per_kind,
        "spaces": len(planned),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "guide": guide_baseline,
    "ours": ours,
    "floor": floor,
    "engine": engine,
}


def main() -> None:
    name = sys.argv[1]
    result = SCENARIOS[name]()
    result["threads_at_end"] = threading.active_count()
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
