"""``make bench-scale`` = ``python -m benchmarks.scale``: a million spaces in AWS's DynamoDB Local, backfilled, audited.

Seeds the table (half the spaces without a code, a tenth with the earlier system's lower-case codes and
their ``INVITE#`` mappings but no claims, so the table is not marked "legacy codes recorded"), then runs
``manage.py backfill_invite_codes -v 0 --report FILE`` (``--segments`` processes, each with ``--segment I
--total-segments N``) and then ``manage.py audit_invite_codes`` as an operator does, each in a child process.
While they run, each child's resident memory (``/proc``) and the spaces fixed so far (the reports' lines)
are sampled; a botocore hook in each child counts its DynamoDB calls.
Writes ``benchmarks/results/scale-<timestamp>.json`` and a plot beside it (``scale-latest.*`` too).
``python -m benchmarks.scale --plot REPORT.json`` redraws a plot from a report.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import WRITE_OPERATIONS, CallCounter, create_seeded_table, instrument_every_client
from devtools import dynamodb_local

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TABLE = "bench-scale"
SAMPLE_SECONDS = 0.5
SHARE_LEGACY = 0.1
RATE_WINDOW_SECONDS = 10.0  # the plot's spaces fixed per second: over windows this long
TICK = os.sysconf("SC_CLK_TCK")
UPDATED = re.compile(rb'"status": ?"updated"')  # a report line of a space given a code


def counted_command(calls_file: str, argv: list[str]) -> None:
    """Run ``manage.py *argv`` (the operator's entry point) in this process, counting its DynamoDB calls."""
    counter = CallCounter()
    instrument_every_client(latency=None, counter=counter)

    def dump() -> None:
        counts = {"calls": dict(counter.calls), "items_written": dict(counter.items_written)}
        Path(calls_file).write_text(json.dumps(counts))

    atexit.register(dump)  # also after the command's sys.exit (exit status 1 or 2)
    # Stoppable: Ctrl-C even when started from a background job (which ignores SIGINT), SIGTERM through atexit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.argv = ["manage.py", *argv]
    sys.path.insert(0, str(ROOT))
    import manage

    manage.main()


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (the peak so far) of a live process, in MiB; empty once it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split() for line in lines if line.startswith(("VmRSS:", "VmHWM:")))
    return {name.rstrip(":"): int(kb) / 1024 for name, kb, *_ in fields}


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def run_commands(
    argvs: list[list[str]], env: dict[str, str], work: Path, *, milestone: int | None = None
) -> dict[str, Any]:
    """``manage.py`` commands run side by side, one child each: wall time, CPU (rusage), calls, sampled memory.

    With ``--report FILE`` in an argv, each sample also counts the spaces fixed so far (the reports'
    ``"updated"`` lines, over all children), and the children's peak memory when ``milestone`` spaces were
    fixed is recorded. A sample is [seconds, spaces fixed, each child's RSS in MiB].
    """
    children: list[dict[str, Any]] = []
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    for index, argv in enumerate(argvs):
        calls_file, output = work / f"{argv[0]}-{index}.calls.json", work / f"{argv[0]}-{index}.out"
        command = [sys.executable, "-m", "benchmarks.scale", "--count-calls", str(calls_file), "--", *argv]
        with open(output, "wb") as out:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        report = Path(argv[argv.index("--report") + 1]) if "--report" in argv else None
        children.append({"process": process, "calls": calls_file, "output": output, "report": report,
                         "reader": None, "tail": b"", "fixed": 0, "peak": 0.0, "rss": 0.0})  # fmt: skip
    samples: list[list[float]] = []
    at_milestone = None
    while any(child["process"].poll() is None for child in children):
        time.sleep(SAMPLE_SECONDS)
        for child in children:
            _sample(child)
        fixed = sum(child["fixed"] for child in children)
        samples.append([round(time.monotonic() - started, 2), fixed, *(round(c["rss"], 1) for c in children)])
        if milestone and at_milestone is None and fixed >= milestone:
            peak = round(max(child["peak"] for child in children), 1)
            at_milestone = {"spaces_fixed": fixed, "peak_rss_mib": peak, "seconds": samples[-1][0]}
    seconds = time.monotonic() - started
    for child in children:
        _sample(child)  # the reports' last lines
        if child["reader"] is not None:
            child["reader"].close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    calls: dict[str, dict[str, int]] = {"calls": {}, "items_written": {}}
    for child in children:
        counted = json.loads(child["calls"].read_text()) if child["calls"].exists() else {}
        for kind, counts in counted.items():
            for operation, n in counts.items():
                calls[kind][operation] = calls[kind].get(operation, 0) + n
    reports = any(child["report"] is not None for child in children)
    return {
        "commands": [["manage.py", *argv] for argv in argvs],
        "exit_status": max(child["process"].returncode for child in children),
        "exit_statuses": [child["process"].returncode for child in children],
        "wall_seconds": round(seconds, 2),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2),
        "peak_rss_mib": round(max(child["peak"] for child in children), 1),  # the last samples' VmHWM
        "peak_rss_mib_per_child": [round(child["peak"], 1) for child in children],
        "spaces_fixed": sum(child["fixed"] for child in children) if reports else None,
        "at_milestone": at_milestone,
        **calls,
        "output_tails": [child["output"].read_text(errors="replace").splitlines()[-25:] for child in children],
        "samples": samples,
    }


def _sample(child: dict[str, Any]) -> None:
    """Update one child's memory (while it lives) and spaces fixed (its report's complete lines so far)."""
    status = _proc_status(child["process"].pid) if child["process"].poll() is None else {}
    if status:
        child["rss"], child["peak"] = status["VmRSS"], max(child["peak"], status["VmHWM"])
    if child["report"] is not None and child["reader"] is None and child["report"].exists():
        child["reader"] = open(child["report"], "rb")  # noqa: SIM115 - read while the child writes, closed at the end
    if child["reader"] is not None:
        chunk = child["tail"] + child["reader"].read()
        cut = chunk.rfind(b"\n") + 1
        child["fixed"] += len(UPDATED.findall(chunk[:cut]))
        child["tail"] = chunk[cut:]


def summarise(backfill: dict[str, Any], milestone: int) -> dict[str, Any]:
    """The issue's figures: spaces fixed per second, CPU and write calls per fixed space, RSS at two sizes."""
    fixed = backfill["spaces_fixed"] or 0
    writes = sum(n for op, n in backfill.get("calls", {}).items() if op in WRITE_OPERATIONS)
    at_milestone = (backfill["at_milestone"] or {}).get("peak_rss_mib")
    return {
        "spaces_fixed": fixed,
        "spaces_fixed_per_second": round(fixed / backfill["wall_seconds"], 1),
        "client_cpu_ms_per_fixed_space": round(1000 * backfill["cpu_seconds"] / fixed, 3) if fixed else None,
        "write_calls": writes,
        "write_calls_per_fixed_space": round(writes / fixed, 4) if fixed else None,
        "read_calls_per_fixed_space": round((sum(backfill.get("calls", {}).values()) - writes) / fixed, 3)
        if fixed
        else None,
        "milestone_spaces_fixed": milestone,
        "peak_rss_mib_at_milestone": at_milestone,
        "peak_rss_mib_at_end": backfill["peak_rss_mib"],
        "rss_growth_milestone_to_end": round(backfill["peak_rss_mib"] / at_milestone - 1, 3) if at_milestone else None,
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """Spaces fixed per second and the backfill's RSS over the run, from the report's samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = report["backfill"]["samples"]
    times, fixed = [sample[0] for sample in samples], [sample[1] for sample in samples]
    rate_t, rate = [], []
    start = 0
    for i, moment in enumerate(times):
        if moment - times[start] >= RATE_WINDOW_SECONDS or (i == len(times) - 1 and i > start):
            rate_t.append((moment + times[start]) / 2)
            rate.append((fixed[i] - fixed[start]) / (moment - times[start]))
            start = i
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.plot(rate_t, rate, color="tab:blue")
    top.set_ylabel(f"spaces fixed / s ({RATE_WINDOW_SECONDS:.0f} s windows)")
    top.set_title(f"backfill_invite_codes over {report['seeded']['spaces']:,} spaces in DynamoDB Local")
    for child in range(len(samples[0]) - 2):
        bottom.plot(times, [sample[2 + child] for sample in samples], label=f"segment {child}")
    bottom.set_ylabel("backfill RSS per process (MiB)")
    if len(samples[0]) > 3:
        bottom.legend(loc="lower right")
    bottom.set_xlabel("seconds since the command started")
    top.set_ylim(bottom=0)
    bottom.set_ylim(bottom=0)
    milestone = report["backfill"]["at_milestone"]
    if milestone:
        for axis in (top, bottom):
            axis.axvline(milestone["seconds"], color="grey", linestyle=":")
        bottom.annotate(f"{milestone['spaces_fixed']:,} fixed", (milestone["seconds"], 0), xytext=(4, 4),
                        textcoords="offset points", color="grey")  # fmt: skip
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _seed(endpoint: str, spaces: int) -> dict[str, Any]:
    expected, done, shown = spaces * 3, [0], [0.0]  # about 3 items a space

    def progress(items: int) -> None:
        done[0] += items
        if done[0] / expected >= shown[0] + 0.05:
            shown[0] = done[0] / expected
            print(f"{datetime.now(UTC):%H:%M:%S} seeded {done[0]:,} items", flush=True)

    return create_seeded_table(endpoint, TABLE, spaces, threads=4, share_legacy=SHARE_LEGACY, progress=progress)


def main(args: argparse.Namespace) -> Path:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifestyle_spaces.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    import django

    django.setup()  # the seeder takes the table's schema from spaces.dynamodb
    milestone = args.milestone or min(100_000, args.spaces // 10)
    server = dynamodb_local.start(heap=args.heap)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    env = {**os.environ, "DYNAMODB_HOST": server.endpoint_url, "DYNAMODB_TABLE": TABLE, "DJANGO_DEBUG": "1",
           "DATABASE_URL": f"sqlite:///{work}/db.sqlite3", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", "DJANGO_SETTINGS_MODULE": "lifestyle_spaces.settings",
           "DYNAMODB_READ_TIMEOUT": "60",  # a starved emulator answered a scan page in over 4 x 5 s
           "DYNAMODB_SCAN_SPLIT": str(args.scan_split)}  # fmt: skip
    started = datetime.now(UTC)
    try:
        print(f"{started:%H:%M:%S} DynamoDB Local on {server.endpoint_url}; seeding {args.spaces:,} spaces", flush=True)
        seeded = _seed(server.endpoint_url, args.spaces)
        print(f"{datetime.now(UTC):%H:%M:%S} seeded: {seeded}; backfill", flush=True)
        server_cpu = _proc_cpu_seconds(server.process.pid)
        argvs = [["backfill_invite_codes", "-v", "0", "--report", str(work / f"backfill-{index}.jsonl")]
                 + (["--segment", str(index), "--total-segments", str(args.segments)] if args.segments > 1 else [])
                 for index in range(args.segments)]  # fmt: skip
        backfill = run_commands(argvs, env, work, milestone=milestone)
        backfill["server_cpu_seconds"] = round(_proc_cpu_seconds(server.process.pid) - server_cpu, 2)
        print(f"{datetime.now(UTC):%H:%M:%S} backfill: {summarise(backfill, milestone)}; audit", flush=True)
        server_cpu = _proc_cpu_seconds(server.process.pid)
        audit = run_commands([["audit_invite_codes"]], env, work)
        audit["server_cpu_seconds"] = round(_proc_cpu_seconds(server.process.pid) - server_cpu, 2)
        server_rss = _proc_status(server.process.pid).get("VmHWM")
    finally:
        server.stop()
    report = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "backend": "DynamoDB Local 1.25.1",
            "java_heap": args.heap,
            "backfill_segments": args.segments,
            "scan_split": args.scan_split,
            "note": "2 cores shared with other work: figures as measured",
        },
        "seeded": seeded,
        "summary": summarise(backfill, milestone),
        "backfill": backfill,
        "audit": audit,
        "dynamodb_local_peak_rss_mib": server_rss,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    plot(report, path.with_suffix(".png"))
    for suffix in (".json", ".png"):
        shutil.copyfile(path.with_suffix(suffix), RESULTS / f"scale-latest{suffix}")
    shutil.rmtree(work, ignore_errors=True)
    return path


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=1_000_000, help="spaces to seed (default 1,000,000)")
    parser.add_argument("--milestone", type=int, help="spaces fixed at which to record the peak RSS (100,000)")
    parser.add_argument("--segments", type=int, default=2, help="backfill processes sharing the scan (default 2)")
    parser.add_argument("--scan-split", type=int, default=128, help="DYNAMODB_SCAN_SPLIT for both commands (128)")
    parser.add_argument("--heap", default="6g", help="DynamoDB Local's Java heap (-Xmx; default 6g)")
    parser.add_argument("--plot", metavar="REPORT", help="only redraw the plot of this JSON report")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--count-calls"]:  # the child: --count-calls FILE -- manage.py arguments
        counted_command(sys.argv[2], sys.argv[4:])
    elif (options := parse(sys.argv[1:])).plot:
        plot(json.loads(Path(options.plot).read_text()), Path(options.plot).with_suffix(".png"))
    else:
        print(f"wrote {main(options)}")
