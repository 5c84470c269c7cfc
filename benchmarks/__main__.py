"""``make bench`` = ``python -m benchmarks``: the backfill comparison and the engine's latencies.

Starts its own moto server on a free port, seeds a fresh table per scenario
(BatchWriteItem from parallel threads), runs each scenario in its own process
(so CPU time and peak RSS are that scenario's), and writes
``benchmarks/results/<timestamp>.json`` and ``latest.json``.

Scale it with the environment (docs/backfill.md):
``BENCH_SPACES`` (2000), ``BENCH_LARGE_SPACES`` (20000, 0 skips),
``BENCH_LATENCY_MS`` (10), ``BENCH_ENGINE_SPACES`` (50000, 0 skips the engine),
``BENCH_ENGINE_SMALL_SPACES`` (500, 0 skips the small engine table),
``BENCH_ENGINE_OPS`` (100), ``BENCH_REPEAT`` (2: ours and the floor, fastest run counts),
``BENCH_MOTO_THREADS`` (16), ``BENCH_SCENARIOS`` (guide,ours,floor,ours_large,engine,load).
The ``load`` scenario is ``python -m benchmarks.load_test`` (docs/operations.md).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    count_spaces_without_code,
    create_seeded_table,
    drop_table,
    env_float,
    env_int,
    server_cpu_seconds,
    start_moto_server,
)
from devtools.embedded_dynamodb import EmbeddedDynamo

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
ALL_SCENARIOS = ("guide", "ours", "floor", "ours_large", "engine", "processes", "load")
PROJECTED_SPACES = 1_000_000
PROJECTED_WORKERS = (1, 8, 64)

# DynamoDB on-demand prices, us-east-1, since the price cut of 1 November 2024
# (https://aws.amazon.com/dynamodb/pricing/on-demand/; AWS "What's New", 14 November 2024:
# "Amazon DynamoDB reduces prices for on-demand throughput and global tables").
USD_PER_MILLION_WRITE_REQUEST_UNITS = 0.625
USD_PER_MILLION_READ_REQUEST_UNITS = 0.125
# A transactional write costs 2 write units per item up to 1 KB (every item the backfill writes is
# far smaller); an eventually consistent Scan 0.5 read units per 4 KB it reads, rounded up per page
# (a Scan reads every item of its pages, whatever the filter returns).
WRITE_UNITS_PER_TRANSACTIONAL_ITEM = 2
WRITE_UNITS_PER_ITEM = 1
READ_UNITS_PER_4KB_EVENTUALLY_CONSISTENT = 0.5


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifestyle_spaces.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()


def run_child(name: str, env: dict[str, str]) -> dict[str, Any]:
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.scenario", name],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"scenario {name} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def backfill_scenario(server: EmbeddedDynamo, child: str, spaces: int, latency_ms: float) -> dict[str, Any]:
    endpoint = server.endpoint_url
    table = f"bench-{child}-{uuid.uuid4().hex[:8]}"
    seeded = create_seeded_table(endpoint, table, spaces)
    print(f"  seeded {seeded['items']} items ({spaces} spaces) in {seeded['seconds']} s", flush=True)
    try:
        server_cpu = server_cpu_seconds(server)
        result = run_child(
            child, {"BENCH_ENDPOINT": endpoint, "BENCH_TABLE": table, "BENCH_LATENCY_MS": str(latency_ms)}
        )
        # The embedded DynamoDB idles while the child starts: its CPU in this window is the scenario's.
        result["server_cpu_seconds"] = round(server_cpu_seconds(server) - server_cpu, 2)
        left = count_spaces_without_code(endpoint, table)
    finally:
        drop_table(endpoint, table)
    fixed = seeded["spaces_without_code"] - left
    result.update(
        {
            "spaces": spaces,
            "table_items": seeded["items"],
            "table_bytes": seeded["bytes"],
            "spaces_without_code_before": seeded["spaces_without_code"],
            "spaces_without_code_after": left,
            "fixed": fixed,
            "latency_ms": latency_ms,
        }
    )
    calls = result["calls"]
    if fixed:
        point_reads = sum(calls.get(op, 0) for op in ("GetItem", "BatchGetItem", "Query"))
        cpu_ms = result["cpu_seconds"] * 1000
        result["per_fixed_space"] = {
            "reads": round(result["reads"] / fixed, 4),
            "writes": round(result["writes"] / fixed, 4),
            "transactions": round(calls.get("TransactWriteItems", 0) / fixed, 4),
            "items_written": round(sum(result["items_written"].values()) / fixed, 4),
            "point_reads": round(point_reads / fixed, 4),  # GetItem/BatchGetItem/Query, scans apart
            "cpu_ms": round(cpu_ms / fixed, 3),
            "cpu_user_ms": round(result["cpu_user_seconds"] * 1000 / fixed, 3),
            "cpu_system_ms": round(result["cpu_system_seconds"] * 1000 / fixed, 3),
            "cpu_ms_per_call": round(cpu_ms / max(1, result["reads"] + result["writes"]), 3),
            "wall_ms": round(result["wall_seconds"] * 1000 / fixed, 3),
        }
    return result


def engine_scenario(server: EmbeddedDynamo, sizes: list[int], latency_ms: float) -> dict[str, Any]:
    """The engine's latencies on a table of each size (a fresh table and process each)."""
    endpoint = server.endpoint_url
    tables: dict[str, Any] = {}
    for spaces in sizes:
        table = f"bench-engine-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        seeded = create_seeded_table_for_engine(endpoint, table, spaces)
        print(f"  seeded {seeded['items']} items ({spaces} spaces) in {time.monotonic() - started:.1f} s", flush=True)
        try:
            result = run_child(
                "engine",
                {
                    "BENCH_ENDPOINT": endpoint,
                    "BENCH_TABLE": table,
                    "BENCH_LATENCY_MS": str(latency_ms),
                    "BENCH_ENGINE_SPACES": str(spaces),
                },
            )
        finally:
            drop_table(endpoint, table)
        result["seeding"] = seeded
        tables[str(spaces)] = result
        print(f"  {spaces} spaces: " + json.dumps(summarize_one(result)), flush=True)
    return {"tables": tables}


def create_seeded_table_for_engine(endpoint: str, table: str, spaces: int) -> dict[str, Any]:
    from benchmarks import common

    original = common.plan_spaces

    def mostly_with_codes(count: int, **kwargs: Any) -> Any:
        return original(count, share_without_code=0.1)

    common.plan_spaces = mostly_with_codes  # the engine table: nine spaces in ten hold a code
    try:
        return create_seeded_table(endpoint, table, spaces)
    finally:
        common.plan_spaces = original


def projection(
    ours: dict[str, Any], *, source: str, latency_ms: float, segments: int, page_size: int
) -> dict[str, Any]:
    """1,000,000 spaces on real DynamoDB (the same share without a code), from one measured run of ours.

    Transactions, their actions and CPU per fixed space are the run's; the
    scan's pages follow from the projected table (``Limit`` counts the items a
    page reads, up to 1 MB), since a small table's segments end in partial
    pages. Wall time, for each number of workers, is whichever bound is
    larger: the round trips (transactions spread over the workers, scan pages
    over the segments) at ``latency_ms`` each, or the client CPU of one
    process.
    """
    scale = PROJECTED_SPACES / ours["spaces"]
    fixed = ours["fixed"] * scale
    table_items = ours["table_items"] * scale
    item_bytes = ours["table_bytes"] / ours["table_items"]
    calls = ours["calls"]
    items_per_page = min(page_size, (1 << 20) // math.ceil(item_bytes))
    scan_pages = segments * math.ceil(table_items / segments / items_per_page)
    transactions = calls.get("TransactWriteItems", 0) * scale
    other_writes = sum(calls.get(op, 0) for op in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")) * scale
    # The table-flag GetItem and the like: once a run, not once a space.
    other_reads = ours["reads"] - calls.get("Scan", 0)
    items_written = ours["items_written"]
    transaction_actions = items_written.get("TransactWriteItems", 0) * scale
    other_items = sum(n for op, n in items_written.items() if op != "TransactWriteItems") * scale
    write_units = transaction_actions * WRITE_UNITS_PER_TRANSACTIONAL_ITEM + other_items * WRITE_UNITS_PER_ITEM
    read_units = scan_pages * math.ceil(items_per_page * item_bytes / 4096) * READ_UNITS_PER_4KB_EVENTUALLY_CONSISTENT
    write_usd = write_units / 1e6 * USD_PER_MILLION_WRITE_REQUEST_UNITS
    read_usd = read_units / 1e6 * USD_PER_MILLION_READ_REQUEST_UNITS
    round_trips = transactions + other_writes + other_reads
    latency = latency_ms / 1000
    cpu_ms = ours["per_fixed_space"]["cpu_ms"]
    cpu_bound = fixed * cpu_ms / 1000  # one process

    def wall(workers: int) -> dict[str, Any]:
        latency_bound = round_trips * latency / workers + scan_pages * latency / segments
        return {
            "latency_bound_seconds": round(latency_bound, 1),
            "cpu_bound_seconds": round(cpu_bound, 1),
            "projected_seconds": round(max(latency_bound, cpu_bound), 1),
            "bound_by": "cpu of one process" if cpu_bound >= latency_bound else "round trips",
            # Processes (--segment/--total-segments, a core each, sharing these workers) that would
            # bring the CPU bound under the round trips'.
            "processes_for_cpu_under_round_trips": max(1, math.ceil(cpu_bound / latency_bound)),
        }

    return {
        "spaces": PROJECTED_SPACES,
        "source": f"{source}: {ours['spaces']:,} spaces, {ours['fixed']:,} fixed",
        "fixed": int(fixed),
        "table_items": int(table_items),
        "calls": {
            "scan_pages": scan_pages,
            "transactions": math.ceil(transactions),
            "actions_per_transaction": round(transaction_actions / max(1.0, transactions), 1),
            "other_writes": math.ceil(other_writes),
            "other_reads": int(other_reads),
        },
        "write_units": round(write_units),
        "read_units": round(read_units),
        "cost_usd": {
            "writes": round(write_usd, 2),
            "reads": round(read_usd, 4),
            "total": round(write_usd + read_usd, 2),
        },
        "cpu_ms_per_fixed_space": cpu_ms,
        "by_workers": {str(workers): wall(workers) for workers in PROJECTED_WORKERS},
        "assumptions": {
            "latency_ms_per_round_trip": latency_ms,
            "segments": segments,
            "processes": 1,
            "mean_item_bytes": round(item_bytes, 1),
            "item_bytes_source": "the seeded items (space, owner membership, claim and mapping of coded spaces), "
            "sized as DynamoDB bills them (benchmarks.common.item_size_bytes)",
            "scan": f"{items_per_page} items a page (page size {page_size}, 1 MB at most), the table as seeded; "
            "items the backfill adds ahead of a scanner (2 a fixed space) can add up to a third more pages",
            "usd_per_million_write_request_units": USD_PER_MILLION_WRITE_REQUEST_UNITS,
            "usd_per_million_read_request_units": USD_PER_MILLION_READ_REQUEST_UNITS,
            "prices": "DynamoDB on-demand, us-east-1, since the 1 November 2024 price cut "
            "(https://aws.amazon.com/dynamodb/pricing/on-demand/)",
            "write_units": "2 per action of a transaction (every item is under 1 KB), 1 per item of other writes",
            "read_units": "0.5 per 4 KB of each Scan page, rounded up (eventually consistent; a Scan reads every "
            "item of its pages, whatever the filter returns); the once-a-run point reads are left out",
        },
        "note": "Wall time = max(round trips x latency / workers + scan pages x latency / segments, "
        "fixed x CPU per fixed space / processes). One process's CPU bounds the wall time however many "
        "workers it runs, unless the run is split across processes with --segment/--total-segments "
        "(processes_for_cpu_under_round_trips). CPU per fixed space is measured over plain HTTP to the "
        "embedded DynamoDB; HTTPS to AWS adds TLS.",
    }


def main() -> None:
    setup_django()
    from django.conf import settings

    spaces = env_int("BENCH_SPACES", 2000)
    large = env_int("BENCH_LARGE_SPACES", 20_000)
    latency_ms = env_float("BENCH_LATENCY_MS", 10.0)
    engine_spaces = env_int("BENCH_ENGINE_SPACES", 50_000)
    engine_small = env_int("BENCH_ENGINE_SMALL_SPACES", 500)
    engine_sizes = [size for size in (engine_small, engine_spaces) if size]
    chosen = [s.strip() for s in os.environ.get("BENCH_SCENARIOS", ",".join(ALL_SCENARIOS)).split(",") if s.strip()]
    if not large:
        chosen = [s for s in chosen if s != "ours_large"]
    if not engine_spaces:
        chosen = [s for s in chosen if s != "engine"]
    from spaces.dynamodb import SCAN_PAGE_SIZE as PAGE_SIZE

    workers, segments, page_size = settings.BACKFILL_WORKERS, 1, PAGE_SIZE  # one scanner per process
    repeat = max(1, env_int("BENCH_REPEAT", 2))

    started_at = datetime.now(UTC)
    server = start_moto_server(threads=env_int("BENCH_MOTO_THREADS", 16))
    print(f"moto server on {server.endpoint_url}; scenarios: {', '.join(chosen)}", flush=True)
    scenarios: dict[str, Any] = {}
    try:
        for name in chosen:
            print(f"- {name}", flush=True)
            try:
                scenarios[name] = run_scenario(name, server, spaces, large, engine_sizes, latency_ms, repeat)
            except RuntimeError as exc:
                # One broken scenario must not lose the others' figures.
                scenarios[name] = {"error": str(exc)[-2000:]}
                print(f"  FAILED: {str(exc)[-500:]}", flush=True)
                continue
            if name != "engine":  # the engine prints each table as it goes
                print("  " + json.dumps(summarize_one(scenarios[name])), flush=True)
    finally:
        server.stop()

    report: dict[str, Any] = {
        "started_at": started_at.isoformat(),
        "seconds": round((datetime.now(UTC) - started_at).total_seconds(), 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "config": {
            "spaces": spaces,
            "large_spaces": large,
            "latency_ms": latency_ms,
            "engine_spaces": engine_sizes,
            "workers": workers,
            "segments": segments,
            "page_size": page_size,
            "repeat": repeat,
            "moto_server": "moto behind gunicorn (1 process, threads, keep-alive)",
        },
        "scenarios": scenarios,
        "comparison": compare(scenarios, latency_ms=latency_ms, segments=segments, page_size=page_size),
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    for path in (RESULTS / f"{stamp}.json", RESULTS / "latest.json"):
        path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["comparison"], indent=2))
    if "projection_1m" in report["comparison"]:
        print(projection_table(report["comparison"]["projection_1m"]))
    print(f"Report: {RESULTS / (stamp + '.json')}")


def run_scenario(
    name: str,
    server: EmbeddedDynamo,
    spaces: int,
    large: int,
    engine_sizes: list[int],
    latency_ms: float,
    repeat: int,
) -> dict[str, Any]:
    if name == "engine":
        return engine_scenario(server, engine_sizes, latency_ms)
    if name == "load":
        return load_scenario()
    if name == "processes":
        return processes_scenario(server, env_int("BENCH_PROCESSES_SPACES", 4000))
    child = "ours" if name == "ours_large" else name
    size = large if name == "ours_large" else spaces
    # The machine is shared: ours and the floor run `repeat` times each and the
    # fastest run counts (every run's wall time is kept in "runs_wall_seconds").
    rounds = repeat if name in ("ours", "floor") else 1
    runs = [backfill_scenario(server, child, size, latency_ms) for _ in range(rounds)]
    best = min(runs, key=lambda run: run["wall_seconds"])
    return {
        **best,
        "runs_wall_seconds": [run["wall_seconds"] for run in runs],
        "runs_cpu_ms_per_fixed_space": [run.get("per_fixed_space", {}).get("cpu_ms") for run in runs],
    }


def processes_scenario(server: EmbeddedDynamo, spaces: int) -> dict[str, Any]:
    """``backfill_invite_codes`` as 1 process and as 2 (``--segment I --total-segments 2`` side by side, as
    ``xargs -P 2`` runs them) on fresh tables of ``spaces``.

    The command runs as an operator runs it, processes of their own (which
    in-process latency hooks would not reach, so no latency is injected here:
    the embedded server's own speed is the limit, and the ratio says how much
    of it one more client process can use).
    """
    runs: dict[str, Any] = {}
    for processes in (1, 2):
        table = f"bench-processes-{processes}-{uuid.uuid4().hex[:8]}"
        seeded = create_seeded_table(server.endpoint_url, table, spaces)
        env = {
            **os.environ,
            "DJANGO_DEBUG": "1",
            "DJANGO_SETTINGS_MODULE": "lifestyle_spaces.settings",
            "DYNAMODB_HOST": server.endpoint_url,
            "DYNAMODB_TABLE": table,
        }
        split = [
            ["--segment", str(i), "--total-segments", str(processes)] if processes > 1 else [] for i in range(processes)
        ]
        started = time.perf_counter()
        try:
            children = [
                subprocess.Popen(
                    [sys.executable, "manage.py", "backfill_invite_codes", *args, "-v", "0"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for args in split
            ]
            outputs = [child.communicate(timeout=1800) for child in children]
            wall = time.perf_counter() - started
            left = count_spaces_without_code(server.endpoint_url, table)
        finally:
            drop_table(server.endpoint_url, table)
        for child, (_, stderr) in zip(children, outputs, strict=True):
            if child.returncode != 0:
                raise RuntimeError(f"{processes} process(es) failed ({child.returncode}): {stderr[-2000:]}")
        fixed = seeded["spaces_without_code"] - left
        runs[str(processes)] = {
            "wall_seconds": round(wall, 3),
            "fixed": fixed,
            "fixed_per_second": round(fixed / wall, 1),
            "spaces_without_code_after": left,
        }
    runs["ratio_2_over_1"] = round(runs["2"]["fixed_per_second"] / runs["1"]["fixed_per_second"], 3)
    return {"spaces": spaces, "runs": runs}


def load_scenario() -> dict[str, Any]:
    """The serving load, restart and outage runs: gunicorn + its own moto server, in a child process."""
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.load_test"], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    output = RESULTS / "load.json"
    if process.returncode != 0 or not output.exists():
        raise RuntimeError(f"load test failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return json.loads(output.read_text())


def summarize_one(result: dict[str, Any]) -> dict[str, Any]:
    if "load" in result or "failure" in result:
        load = result.get("load", {})
        summary = {key: load.get(key) for key in ("requests_per_second", "latency_ms", "error_rate")}
        restarts = {name: result.get("restart", {}).get(name, {}) for name in ("gevent", "gthread")}
        restart_keys = ("workers_replaced", "read_errors", "share_over_1s_during_restarts", "share_over_1s_otherwise")
        summary["restart"] = {name: {key: run.get(key) for key in restart_keys} for name, run in restarts.items()}
        return {**summary, "gevent_vs_gthread": result.get("gevent_vs_gthread", {}).get("ratio")}
    if "tables" in result:
        return {f"{size} spaces": summarize_one(table) for size, table in result["tables"].items()}
    if "runs" in result and "ratio_2_over_1" in result["runs"]:
        return result["runs"]
    if "rounds" in result:
        return {
            name: {
                op: {"p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "calls_per_op": r["calls_per_op"]}
                for op, r in ops.items()
            }
            for name, ops in result["rounds"].items()
        }
    return {
        key: result.get(key)
        for key in ("wall_seconds", "cpu_seconds", "fixed", "spaces_without_code_after", "peak_rss_mib", "calls")
    } | {"per_fixed_space": result.get("per_fixed_space")}


def compare(scenarios: dict[str, Any], *, latency_ms: float, segments: int, page_size: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    usable = {name: result for name, result in scenarios.items() if "error" not in result}
    guide, ours, floor, large = (usable.get(k) for k in ("guide", "ours", "floor", "ours_large"))
    walls = {name: result["wall_seconds"] for name, result in usable.items() if "wall_seconds" in result}
    if walls:
        out["wall_seconds"] = walls
        # Where the wall time goes: the client's CPU, and the embedded DynamoDB's (one request at a time).
        out["cpu_seconds"] = {
            name: {"client": usable[name]["cpu_seconds"], "server": usable[name].get("server_cpu_seconds")}
            for name in walls
        }
    if guide and ours:
        out["speedup_vs_guide"] = round(guide["wall_seconds"] / ours["wall_seconds"], 2)
        out["target_8x_faster_than_guide"] = out["speedup_vs_guide"] >= 8
    if ours and ours.get("per_fixed_space"):
        per = ours["per_fixed_space"]
        out["ours_fixed"] = ours["fixed"]
        out["ours_spaces_without_code_after"] = ours["spaces_without_code_after"]
        out["ours_reads_per_fixed_space"] = per["reads"]
        out["ours_writes_per_fixed_space"] = per["writes"]
        out["ours_point_reads_per_fixed_space"] = per["point_reads"]
        out["ours_items_written_per_fixed_space"] = per["items_written"]
        out["target_writes_at_most_0_1_per_fixed_space"] = per["writes"] <= 0.1
        out["ours_cpu_ms_per_fixed_space"] = per["cpu_ms"]
        out["target_cpu_at_most_1ms_per_fixed_space"] = per["cpu_ms"] <= 1.0
    if large and large.get("per_fixed_space"):
        out["ours_large_cpu_ms_per_fixed_space"] = large["per_fixed_space"]["cpu_ms"]
        out["ours_large_writes_per_fixed_space"] = large["per_fixed_space"]["writes"]
    if large and ours:
        out["rss_mib"] = {"ours": ours["peak_rss_mib"], "ours_large": large["peak_rss_mib"]}
        out["rss_large_over_small"] = round(large["peak_rss_mib"] / ours["peak_rss_mib"], 3)
        out["target_rss_within_15_percent"] = out["rss_large_over_small"] <= 1.15
    if floor and ours:
        out["ours_over_floor"] = round(ours["wall_seconds"] / floor["wall_seconds"], 3)  # reported, no target
        if floor.get("per_fixed_space"):
            out["floor_cpu_ms_per_fixed_space"] = floor["per_fixed_space"]["cpu_ms"]
    if guide and guide.get("per_fixed_space"):
        out["guide_cpu_ms_per_fixed_space"] = guide["per_fixed_space"]["cpu_ms"]
        out["guide_writes_per_fixed_space"] = guide["per_fixed_space"]["writes"]
    engine = usable.get("engine")
    if engine:
        out["engine_p50_p95_ms"] = summarize_one(engine)
        tables = engine["tables"]
        if len(tables) == 2:
            small, big = sorted(tables, key=int)
            unloaded = f"latency_{0:g}ms"
            small_p50 = tables[small]["rounds"][unloaded]["invite_code_regenerate"]["p50_ms"]
            big_p50 = tables[big]["rounds"][unloaded]["invite_code_regenerate"]["p50_ms"]
            out["regenerate_p50_ms_no_latency"] = {f"{small} spaces": small_p50, f"{big} spaces": big_p50}
            out["regenerate_p50_large_over_small"] = round(big_p50 / small_p50, 3)
            out["target_regenerate_p50_within_1_5x"] = out["regenerate_p50_large_over_small"] <= 1.5
    # The large run, when there is one: start-up weighs as little in it as it would at 1,000,000.
    source = "ours_large" if large and large.get("per_fixed_space") else "ours"
    if usable.get(source, {}).get("per_fixed_space"):
        out["projection_1m"] = projection(
            usable[source], source=source, latency_ms=latency_ms, segments=segments, page_size=page_size
        )
    if "processes" in usable:
        out["processes_fixed_per_second"] = {n: usable["processes"]["runs"][n]["fixed_per_second"] for n in ("1", "2")}
        out["processes_ratio_2_over_1"] = usable["processes"]["runs"]["ratio_2_over_1"]
    out["failed_scenarios"] = sorted(set(scenarios) - set(usable))
    return out


def projection_table(projected: dict[str, Any]) -> str:
    calls, cost = projected["calls"], projected["cost_usd"]
    lines = [
        f"Projection: {projected['spaces']:,} spaces on real DynamoDB ({projected['fixed']:,} to fix, "
        f"{projected['table_items']:,} items; from {projected['source']}), "
        f"{projected['assumptions']['latency_ms_per_round_trip']:g} ms a round trip, one process",
        f"{'workers':>7} {'scan pages':>10} {'transactions':>12} {'write units':>12} {'read units':>10} "
        f"{'USD':>6} {'round trips s':>13} {'CPU s':>7} {'wall s':>7}",
    ]
    for workers, row in projected["by_workers"].items():
        lines.append(
            f"{workers:>7} {calls['scan_pages']:>10,} {calls['transactions']:>12,} "
            f"{projected['write_units']:>12,} {projected['read_units']:>10,} {cost['total']:>6.2f} "
            f"{row['latency_bound_seconds']:>13.1f} {row['cpu_bound_seconds']:>7.1f} {row['projected_seconds']:>7.1f}"
        )
    lines.append(projected["note"])
    return "\n".join(lines)


if __name__ == "__main__":
    main()
