"""Load and failure benchmarks: gunicorn on 127.0.0.1 against the embedded DynamoDB (moto server).

    python -m benchmarks.load_test                 # both, writes benchmarks/results/load.json
    python -m benchmarks.load_test --users 10 --duration 15 --failure-duration 30   # a quick run

Defaults come from BENCH_LOAD_USERS, BENCH_LOAD_SECONDS, BENCH_FAILURE_USERS and
BENCH_FAILURE_SECONDS when set. Run it as its own process: it configures
Django with the server's production settings.

Load: ``--users`` closed-loop clients (each with its own kept-alive connection
and token, no think time) for ``--duration`` seconds, over a mix of mostly
reads: get space 70 %, join 10 %, regenerate 10 %, list 10 %. Reported:
requests per second, p50/p95/p99 latency, error rate, and the CPU time the
gunicorn processes used per request, measured apart from the moto server.

The load run is under the shipped gevent workers; then the same load runs in
four shorter rounds, gevent, gthread (2 x 8 threads, the earlier setup),
gthread, gevent, and gevent's requests/s and CPU per request are reported as
ratios to gthread's: the machine is noisy, so only ratios within one run count.

Restart: ``--restart-users`` (8) kept-alive clients for ``--restart-duration``
(60) seconds while each worker is recycled every ``--restart-max-requests``
requests. Reported: read errors (requests sent and never answered), answers over
1 s, and how many workers were replaced, for each worker class.

Failure: the same mix with fewer clients while the DynamoDB endpoint is stopped
and started again (a TCP forwarder in front of moto is killed and restarted,
see ``benchmarks/tcp_forwarder.py``). Reported: how fast requests fail while it
is down, what ``/readyz`` says, how long recovery takes, and what
``audit_invite_codes`` finds afterwards.

Everything binds 127.0.0.1 on free ports and is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS_FILE = BASE_DIR / "benchmarks" / "results" / "load.json"
TABLE_NAME = "bench-load"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The request mix of a typical client: mostly reads.
MIX = {"get_space": 70, "join": 10, "regenerate": 10, "list": 10}

# --- processes ----------------------------------------------------------------------------


def configure_django(env: dict[str, str]) -> None:
    """This process uses the app's own services to seed and to sign tokens, with the server's settings."""
    # Not the server's metrics directory: the counters of this process are not the app's.
    os.environ.update({name: value for name, value in env.items() if name != "PROMETHEUS_MULTIPROC_DIR"})
    import django

    django.setup()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_of(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) for pid in pids)


def start_forwarder(listen_port: int, target_port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.tcp_forwarder", "--listen", str(listen_port), "--target", str(target_port)],
        cwd=BASE_DIR,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", listen_port, timeout=1)
                probe.request("GET", "/moto-api/")
                probe.getresponse().read()
                probe.close()
                return process
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the TCP forwarder did not start")
    except BaseException:
        process.kill()
        process.wait()
        raise


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class User:
    user_id: str
    token: str
    own_spaces: list[str] = field(default_factory=list)
    visible_spaces: list[str] = field(default_factory=list)
    join_codes: list[str] = field(default_factory=list)


def access_token(user_id: str) -> str:
    from rest_framework_simplejwt.tokens import AccessToken

    # The API authenticates statelessly: the token's user_id claim is the whole identity.
    return str(AccessToken.for_user(SimpleNamespace(id=user_id)))  # type: ignore[type-var]  # only the id claim is read


def seed(users: int, *, join_pool: int, seed_value: int) -> list[User]:
    """Users with two spaces each, membership in two others, and a pool of spaces to join.

    Built through the engine's services, as the app would. Pool spaces are never
    regenerated during the run, so their codes stay valid for joining.
    """
    import uuid

    from invites.joining import space_join_with_code
    from invites.services import space_create

    rng = random.Random(seed_value)
    people = [User(user_id=str(uuid.uuid4()), token="") for _ in range(users)]
    for person in people:
        person.token = access_token(person.user_id)
    host_id = str(uuid.uuid4())

    with ThreadPoolExecutor(max_workers=8) as pool:
        owned = list(
            pool.map(
                lambda pair: (pair[0], space_create(owner_id=pair[0].user_id, name=f"Space {pair[1]}")),
                [(person, n) for person in people for n in range(2)],
            )
        )
        open_spaces = list(
            pool.map(lambda n: space_create(owner_id=host_id, name=f"Open {n}", is_public=True), range(join_pool))
        )
        for person, space in owned:
            person.own_spaces.append(space.id)
            person.visible_spaces.append(space.id)
        # Each user is a member of a space of each of the next two users.
        memberships: list[tuple[User, Any]] = []
        for index, person in enumerate(people):
            for offset in (1, 2):
                other_person, space = owned[2 * ((index + offset) % users) + offset % 2]
                if other_person is not person:
                    memberships.append((person, space))
        list(
            pool.map(
                lambda pair: space_join_with_code(typed_code=pair[1].invite_code, user_id=pair[0].user_id),
                memberships,
            )
        )
    for person, space in memberships:
        person.visible_spaces.append(space.id)
    for person in people:
        person.join_codes = [space.invite_code for space in rng.sample(open_spaces, len(open_spaces))]
    return people


# --- the load generator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    operation: str
    status: int  # 0: no HTTP answer (connection error or client timeout)
    started: float  # seconds since the run started
    latency: float
    error_body: str | None = None  # the start of the body of a non-2xx answer


Request = tuple[str, str, bytes | None]


def next_request(operation: str, user: User, rng: random.Random) -> Request:
    if operation == "get_space":
        return "GET", f"/api/spaces/{rng.choice(user.visible_spaces)}", None
    if operation == "join":
        return "POST", "/api/spaces/join", json.dumps({"invite_code": user.join_codes.pop()}).encode()
    if operation == "regenerate":
        return "POST", f"/api/spaces/{rng.choice(user.own_spaces)}/invite", b""
    return "GET", "/api/spaces", None


@dataclass(frozen=True)
class ClientRun:
    samples: list[Sample]
    wall_seconds: float
    started_at: float  # time.monotonic() at the start
    joins_skipped: int  # joins replaced by a read because the client had tried every pool space


def run_clients(
    port: int,
    users: list[User],
    *,
    duration: float,
    seed_value: int,
    client_timeout: float = 30.0,
    on_tick: Callable[[float], None] | None = None,
) -> ClientRun:
    """Closed-loop clients, one thread and one kept-alive connection each."""
    operations, weights = zip(*MIX.items(), strict=True)
    samples: list[Sample] = []
    joins_skipped = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(len(users) + 1)
    started_at = 0.0

    def client(index: int, user: User) -> None:
        rng = random.Random(seed_value * 1000 + index)
        own: list[Sample] = []
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=client_timeout)
        barrier.wait()
        deadline = started_at + duration
        while (now := time.monotonic()) < deadline:
            operation = rng.choices(operations, weights)[0]
            if operation == "join" and not user.join_codes:
                # Every pool space tried (a client that fails fast runs through them quickly).
                operation = "get_space"
                with lock:
                    joins_skipped[0] += 1
            method, path, body = next_request(operation, user, rng)
            headers = {"Host": "127.0.0.1", "Authorization": f"Bearer {user.token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                content = response.read()
                status = response.status
                error_body = None if 200 <= status < 300 else content[:120].decode(errors="replace")
                if error_body is not None and os.environ.get("BENCH_TRACE_ERRORS"):
                    line = f"ERROR {now - started_at:.2f} {status} {method} {path} {body!r} {error_body}\n"
                    sys.stdout.write(line)
            except (OSError, http.client.HTTPException) as exc:
                status, error_body = 0, type(exc).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=client_timeout)
            own.append(Sample(operation, status, now - started_at, time.monotonic() - now, error_body))
        connection.close()
        with lock:
            samples.extend(own)

    threads = [threading.Thread(target=client, args=(i, user), daemon=True) for i, user in enumerate(users)]
    for thread in threads:
        thread.start()
    started_at = time.monotonic()
    barrier.wait()
    if on_tick is not None:
        while time.monotonic() < started_at + duration:
            on_tick(time.monotonic() - started_at)
            time.sleep(0.05)
    for thread in threads:
        thread.join(duration + client_timeout + 30)
    return ClientRun(samples, time.monotonic() - started_at, started_at, joins_skipped[0])


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(samples: list[Sample]) -> dict[str, float | None]:
    latencies = sorted(s.latency for s in samples)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "p50": ms(percentile(latencies, 0.50)),
        "p95": ms(percentile(latencies, 0.95)),
        "p99": ms(percentile(latencies, 0.99)),
        "max": ms(latencies[-1] if latencies else None),
    }


def summarize(samples: list[Sample], wall_seconds: float) -> dict[str, Any]:
    errors = [s for s in samples if not 200 <= s.status < 300]
    server_errors = [s for s in samples if s.status >= 500 or s.status == 0]
    by_operation = {}
    for operation in MIX:
        mine = [s for s in samples if s.operation == operation]
        by_operation[operation] = {
            "requests": len(mine),
            "errors": sum(1 for s in mine if not 200 <= s.status < 300),
            "status_counts": dict(Counter(str(s.status) for s in mine)),
            "error_answers": {
                f"{status} {body}": count
                for (status, body), count in Counter(
                    (s.status, s.error_body) for s in mine if not 200 <= s.status < 300
                ).most_common(5)
            },
            "latency_ms": latency_summary(mine),
        }
    return {
        "requests": len(samples),
        "wall_seconds": round(wall_seconds, 2),
        "requests_per_second": round(len(samples) / wall_seconds, 1) if wall_seconds else None,
        "latency_ms": latency_summary(samples),
        "error_rate": round(len(errors) / len(samples), 5) if samples else None,
        "server_errors_5xx_or_no_answer": len(server_errors),
        "status_counts": dict(Counter(str(s.status) for s in samples)),
        "by_operation": by_operation,
    }


# --- the two benchmarks ------------------------------------------------------------------------


@contextmanager
def app_server(
    env: dict[str, str], *, workers: int, threads: int, log_file: Path, worker_class: str = "gevent"
) -> Iterator[Any]:
    from devtools import gunicorn_process

    if worker_class != "gevent":  # the shipped config's class; another is given on gunicorn's command line
        env = {**env, "GUNICORN_CMD_ARGS": f"--worker-class {worker_class} --threads {threads}"}
    with log_file.open("wb") as output:
        server = gunicorn_process.start(env=env, workers=workers, threads=threads, output=output)
        try:
            yield server
        finally:
            server.stop()


def server_environment(dynamodb_host: str, work_dir: Path, secret_key: str) -> dict[str, str]:
    from devtools import gunicorn_process

    return gunicorn_process.production_environment(
        DJANGO_SECRET_KEY=secret_key,
        DYNAMODB_HOST=dynamodb_host,
        DYNAMODB_TABLE=TABLE_NAME,
        # The timeouts and retries the app ships with (settings.py), stated so the report shows them.
        DYNAMODB_CONNECT_TIMEOUT=os.environ.get("DYNAMODB_CONNECT_TIMEOUT_BENCH", "2"),
        DYNAMODB_READ_TIMEOUT=os.environ.get("DYNAMODB_READ_TIMEOUT_BENCH", "5"),
        # Throughput, not abuse: the per-user limits (10 a minute) would turn most of the mix into 429s.
        THROTTLE_INVITE_JOIN="1000000/min",
        THROTTLE_INVITE_PREVIEW="1000000/min",
        THROTTLE_INVITE_REGENERATE="1000000/min",
        THROTTLE_SPACE_CREATE="1000000/min",
        PROMETHEUS_MULTIPROC_DIR=str(work_dir / "metrics"),
        GUNICORN_MAX_REQUESTS="0",  # no worker recycling mid-measurement
        LOG_LEVEL="WARNING",
        AWS_ACCESS_KEY_ID="embedded",
        AWS_SECRET_ACCESS_KEY="embedded",
    )


def load_benchmark(
    moto: Any,
    env: dict[str, str],
    work_dir: Path,
    *,
    users: int,
    duration: float,
    workers: int,
    threads: int,
    worker_class: str = "gevent",
) -> dict[str, Any]:
    from devtools.gunicorn_process import child_pids

    people = seed(users, join_pool=30, seed_value=1)
    log_file = work_dir / f"gunicorn-load-{worker_class}.log"
    with app_server(env, workers=workers, threads=threads, log_file=log_file, worker_class=worker_class) as server:
        # Warm-up: every worker builds its client and connection pool before the measurement.
        run_clients(server.port, seed(4, join_pool=2, seed_value=2), duration=3, seed_value=2)
        app_pids = [server.process.pid, *server.worker_pids()]
        # The embedded DynamoDB is a gunicorn master whose worker does the work.
        moto_pids = [moto.process.pid, *child_pids(moto.process.pid)]
        app_cpu, moto_cpu, own_cpu = cpu_of(app_pids), cpu_of(moto_pids), time.process_time()
        run = run_clients(server.port, people, duration=duration, seed_value=3)
        app_cpu = cpu_of(app_pids) - app_cpu
        moto_cpu = cpu_of(moto_pids) - moto_cpu
        own_cpu = time.process_time() - own_cpu
    samples, wall = run.samples, run.wall_seconds
    result = summarize(samples, wall)
    result["joins_replaced_by_reads"] = run.joins_skipped
    count = max(1, result["requests"])
    result.update(
        {
            "users": users,
            "duration_seconds": duration,
            "mix_percent": MIX,
            "gunicorn": {"workers": workers, "threads": threads, "worker_class": worker_class},
            "cpu": {
                "app_cpu_seconds": round(app_cpu, 2),
                "app_cpu_ms_per_request": round(app_cpu * 1000 / count, 2),
                "app_cores_busy": round(app_cpu / wall, 2),
                "moto_cpu_seconds": round(moto_cpu, 2),
                "moto_cpu_ms_per_request": round(moto_cpu * 1000 / count, 2),
                "load_generator_cpu_seconds": round(own_cpu, 2),
                "machine_cores": os.cpu_count(),
            },
        }
    )
    return result


def restart_benchmark(
    env: dict[str, str], work_dir: Path, *, users: int, duration: float, workers: int, max_requests: int
) -> dict[str, Any]:
    """Kept-alive clients while gunicorn recycles its workers: what each worker class loses, and how slowly."""
    env = {**env, "GUNICORN_MAX_REQUESTS": str(max_requests)}
    report: dict[str, Any] = {"users": users, "duration_seconds": duration, "max_requests": max_requests}
    for index, worker_class in enumerate(("gevent", "gthread")):
        people = seed(users, join_pool=30, seed_value=5 + index)
        first_seen: dict[int, float] = {}  # worker pid -> seconds into the run when it was first seen
        log_file = work_dir / f"gunicorn-restart-{worker_class}.log"
        with app_server(env, workers=workers, threads=8, log_file=log_file, worker_class=worker_class) as server:

            def note_workers(elapsed: float, server: Any = server, seen: dict[int, float] = first_seen) -> None:
                for pid in server.worker_pids():
                    seen.setdefault(pid, elapsed)

            run = run_clients(server.port, people, duration=duration, seed_value=6, on_tick=note_workers)
        replacements = sorted(first_seen.values())[workers:]
        # Requests pending within 2 s of a new worker appearing (the old one stopping, the new one starting),
        # against the others: on a busy machine answers over 1 s happen anyway; a restart must not add to them.
        during = [s for s in run.samples if any(s.started - 2 <= t <= s.started + s.latency + 2 for t in replacements)]
        others = [sample for sample in run.samples if all(sample is not pending for pending in during)]

        def share_over_1s(samples: list[Sample]) -> float | None:
            return round(sum(1 for s in samples if s.latency > 1.0) / len(samples), 4) if samples else None

        result = summarize(run.samples, run.wall_seconds)
        report[worker_class] = {
            "workers_replaced": len(replacements),
            "read_errors": sum(1 for sample in run.samples if sample.status == 0),
            "answers_over_1s": sum(1 for sample in run.samples if sample.latency > 1.0),
            "answers_over_1s_during_a_restart": sum(1 for sample in during if sample.latency > 1.0),
            "share_over_1s_during_restarts": share_over_1s(during),
            "share_over_1s_otherwise": share_over_1s(others),
            **{key: result[key] for key in ("requests", "requests_per_second", "latency_ms", "status_counts")},
        }
    return report


def worker_class_comparison(
    moto: Any, env: dict[str, str], work_dir: Path, *, users: int, duration: float, workers: int, threads: int
) -> dict[str, Any]:
    """gevent against gthread in rounds ordered gevent, gthread, gthread, gevent: a drift of the machine's other
    load (it is shared) weighs on both alike. Ratios are gevent's over gthread's (above 1: more of it)."""
    rounds: dict[str, list[dict[str, Any]]] = {"gevent": [], "gthread": []}
    for worker_class in ("gevent", "gthread", "gthread", "gevent"):
        sizes = {"users": users, "workers": workers, "threads": threads}
        run = load_benchmark(moto, env, work_dir, duration=duration, worker_class=worker_class, **sizes)
        rounds[worker_class].append(run)

    def totals(runs: list[dict[str, Any]]) -> dict[str, float]:
        requests = sum(run["requests"] for run in runs)
        return {
            "requests_per_second": requests / sum(run["wall_seconds"] for run in runs),
            "app_cpu_ms_per_request": 1000 * sum(run["cpu"]["app_cpu_seconds"] for run in runs) / requests,
        }

    gevent, gthread = totals(rounds["gevent"]), totals(rounds["gthread"])
    return {
        "round_seconds": duration,
        "rounds": {
            name: [{k: run[k] for k in ("requests_per_second", "latency_ms", "cpu")} for run in runs]
            for name, runs in rounds.items()
        },
        "gevent": {key: round(value, 2) for key, value in gevent.items()},
        "gthread": {key: round(value, 2) for key, value in gthread.items()},
        "ratio": {key: round(gevent[key] / gthread[key], 3) for key in gevent},
    }


def run_audit(env: dict[str, str], *options: str) -> dict[str, Any]:
    """``manage.py audit_invite_codes`` against the benchmark table, as an operator would run it."""
    try:
        completed = subprocess.run(
            [sys.executable, "manage.py", "audit_invite_codes", *options],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ran": False, "reason": "timed out"}
    output = (completed.stdout + completed.stderr).strip().splitlines()
    if "Unknown command" in "\n".join(output):
        return {"ran": False, "reason": "audit_invite_codes is not on this branch"}
    return {"ran": True, "exit_code": completed.returncode, "clean": completed.returncode == 0, "output": output[-12:]}


def strict_invariant_check() -> dict[str, Any]:
    """The test suite's whole-table check (written apart from the engine), with no grace period.

    Unlike the audit, which leaves operations younger than a minute alone,
    this counts anything an interrupted request left behind.
    """
    from tests.invariants import invariant_violations

    problems = invariant_violations()
    return {"problems": len(problems), "first": problems[:10]}


def failure_benchmark(
    moto: Any, env: dict[str, str], work_dir: Path, *, users: int, duration: float, workers: int, threads: int
) -> dict[str, Any]:
    from devtools.embedded_dynamodb import free_port

    forwarder_port = free_port()
    forwarder = start_forwarder(forwarder_port, moto.port)
    env = {**env, "DYNAMODB_HOST": f"http://127.0.0.1:{forwarder_port}"}
    people = seed(users, join_pool=30, seed_value=4)
    stop_at, restart_at = duration / 4, duration / 2
    events: dict[str, float] = {}
    readiness: list[tuple[float, int, float]] = []  # (when, status, latency)
    state = {"forwarder": forwarder}
    try:
        with app_server(env, workers=workers, threads=threads, log_file=work_dir / "gunicorn-failure.log") as server:

            def probe_readiness(stop: threading.Event) -> None:
                while not stop.is_set():
                    began = time.monotonic()
                    probe = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                    try:
                        probe.request("GET", "/readyz", headers={"Host": "127.0.0.1"})
                        status = probe.getresponse().status
                    except OSError:
                        status = 0
                    finally:
                        probe.close()
                    readiness.append((began, status, time.monotonic() - began))
                    stop.wait(0.25)

            def tick(elapsed: float) -> None:
                if "stopped" not in events and elapsed >= stop_at:
                    state["forwarder"].send_signal(signal.SIGKILL)
                    state["forwarder"].wait()
                    events["stopped"] = elapsed
                elif "stopped" in events and "restarted" not in events and elapsed >= restart_at:
                    starting = time.monotonic()
                    state["forwarder"] = start_forwarder(forwarder_port, moto.port)
                    # Back once it answers (a fresh process takes a few tenths of a second),
                    # so requests refused while it starts count as "while down".
                    events["restarted"] = elapsed + (time.monotonic() - starting)

            stop_probing = threading.Event()
            prober = threading.Thread(target=probe_readiness, args=(stop_probing,), daemon=True)
            prober.start()
            run = run_clients(server.port, people, duration=duration, seed_value=5, on_tick=tick)
            samples, wall, started_at = run.samples, run.wall_seconds, run.started_at
            stop_probing.set()
            prober.join(15)
            # On the clients' clock: seconds since the run started.
            readiness = [(began - started_at, status, latency) for began, status, latency in readiness]

        audit_env = env | {"DYNAMODB_HOST": moto.endpoint_url}
        audit = run_audit(audit_env)
        invariants = strict_invariant_check()
        if invariants["problems"] and audit.get("ran"):
            # Leftovers of requests cut off by the outage are younger than the audit's
            # grace period; show what the audit says of them without it, and its repair.
            audit["without_grace_period"] = run_audit(audit_env, "--grace-seconds", "0")
            audit["repair"] = run_audit(audit_env, "--repair", "--grace-seconds", "0")
            invariants["after_repair"] = strict_invariant_check()
    finally:
        # Never leave the forwarder behind, whatever failed.
        state["forwarder"].kill()
        state["forwarder"].wait()

    stopped, restarted = events["stopped"], events["restarted"]
    # Requests sent before the stop are split by when they were answered: the
    # ones still on their way when the endpoint went away fail with it.
    before = [s for s in samples if s.started + s.latency < stopped]
    in_flight = [s for s in samples if s.started < stopped <= s.started + s.latency]
    last_in_flight_answer = max((s.started + s.latency for s in in_flight), default=stopped)
    down = [s for s in samples if stopped <= s.started < restarted]
    after = [s for s in samples if s.started >= restarted]
    failed_after = [s for s in after if not 200 <= s.status < 300]
    ready_down = [status for t, status, _ in readiness if stopped + 0.5 <= t < restarted]
    first_503 = next((t for t, status, _ in readiness if t >= stopped and status == 503), None)
    first_ok_after = next((t for t, status, _ in readiness if t >= restarted and status == 200), None)
    first_success_after = min((s.started + s.latency for s in after if 200 <= s.status < 300), default=None)
    last_failure_after = max((s.started + s.latency for s in failed_after), default=None)
    return {
        "users": users,
        "duration_seconds": duration,
        "joins_replaced_by_reads": run.joins_skipped,
        "endpoint_stopped_at_s": round(stopped, 2),
        "endpoint_restarted_at_s": round(restarted, 2),
        "app_dynamodb_settings": {
            "connect_timeout_s": float(env["DYNAMODB_CONNECT_TIMEOUT"]),
            "read_timeout_s": float(env["DYNAMODB_READ_TIMEOUT"]),
            "retry_mode": env.get("DYNAMODB_RETRY_MODE", "standard"),
            "max_attempts": int(env.get("DYNAMODB_MAX_ATTEMPTS", "4")),
        },
        "before": summarize(before, stopped),
        "in_flight_at_stop": summarize(in_flight, last_in_flight_answer - stopped),
        "while_down": summarize(down, restarted - stopped),
        "after_restart": summarize(after, wall - restarted),
        "readyz": {
            "probes_while_down": len(ready_down),
            "status_counts_while_down": dict(Counter(str(s) for s in ready_down)),
            "max_probe_latency_ms": round(max((lat for _, _, lat in readiness), default=0) * 1000, 1),
            "seconds_to_first_503": None if first_503 is None else round(first_503 - stopped, 2),
            "seconds_to_first_200_after_restart": None
            if first_ok_after is None
            else round(first_ok_after - restarted, 2),
        },
        "recovery": {
            "seconds_to_first_success": None
            if first_success_after is None
            else round(first_success_after - restarted, 2),
            "seconds_to_last_failure": None if last_failure_after is None else round(last_failure_after - restarted, 2),
            "failures_after_restart": len(failed_after),
        },
        "audit": audit,
        "invariants": invariants,
    }


def env_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Load and failure benchmarks (gunicorn + moto on 127.0.0.1).")
    # Defaults also from the environment, so that `make bench` can scale the run.
    parser.add_argument(
        "--users", type=int, default=env_number("BENCH_LOAD_USERS", 50), help="Clients of the load run (50)."
    )
    parser.add_argument(
        "--duration", type=float, default=env_number("BENCH_LOAD_SECONDS", 60), help="Seconds of the load run (60)."
    )
    parser.add_argument(
        "--failure-users",
        type=int,
        default=env_number("BENCH_FAILURE_USERS", 20),
        help="Clients of the failure run (20).",
    )
    parser.add_argument(
        "--failure-duration",
        type=float,
        default=env_number("BENCH_FAILURE_SECONDS", 40),
        help="Seconds of the failure run (40); the endpoint is down from 1/4 to 1/2 of it.",
    )
    parser.add_argument("--workers", type=int, default=2, help="Gunicorn workers (default 2).")
    parser.add_argument("--threads", type=int, default=8, help="Threads per worker (default 8).")
    parser.add_argument(
        "--compare-seconds",
        type=float,
        default=env_number("BENCH_COMPARE_SECONDS", 20),
        help="Seconds of each of the 4 rounds comparing gevent and gthread workers (20).",
    )
    parser.add_argument(
        "--restart-users", type=int, default=env_number("BENCH_RESTART_USERS", 8), help="Restart run's clients (8)."
    )
    parser.add_argument(
        "--restart-duration",
        type=float,
        default=env_number("BENCH_RESTART_SECONDS", 60),
        help="Seconds of the restart run (60), for each worker class.",
    )
    parser.add_argument(
        "--restart-max-requests",
        type=int,
        default=env_number("BENCH_RESTART_MAX_REQUESTS", 300),
        help="GUNICORN_MAX_REQUESTS of the restart run (300, with the config's 10 %% jitter).",
    )
    parser.add_argument("--only", choices=["load", "restart", "failure"], default=None, help="Run one of the three.")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help=f"JSON report (default {RESULTS_FILE}).")
    args = parser.parse_args(argv)

    from devtools import embedded_dynamodb

    secret_key = secrets.token_urlsafe(64)
    report: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # Other work on the machine slows moto and the app alike: read the numbers with this in mind.
        "load_average_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }
    moto = embedded_dynamodb.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            work_dir = Path(tmp)
            env = server_environment(moto.endpoint_url, work_dir, secret_key)
            configure_django(env)  # the process's connection is made from these settings on first use
            from spaces.table import table_create_if_missing

            table_create_if_missing()
            sizes = {"workers": args.workers, "threads": args.threads}
            if args.only in (None, "load"):
                print(f"Load: {args.users} users for {args.duration:.0f} s, then gevent vs gthread ...", flush=True)
                load = {"users": args.users, "duration": args.duration, **sizes}
                report["load"] = load_benchmark(moto, env, work_dir, **load)
                print(json.dumps({k: report["load"][k] for k in ("requests_per_second", "latency_ms", "error_rate")}))
                load["duration"] = args.compare_seconds
                report["gevent_vs_gthread"] = worker_class_comparison(moto, env, work_dir, **load)
                print(json.dumps(report["gevent_vs_gthread"]["ratio"]))
            if args.only in (None, "restart"):
                print(f"Restart: {args.restart_users} users, {args.restart_duration:.0f} s per class ...", flush=True)
                report["restart"] = restart_benchmark(
                    env,
                    work_dir,
                    users=args.restart_users,
                    duration=args.restart_duration,
                    workers=args.workers,
                    max_requests=args.restart_max_requests,
                )
                print(json.dumps(report["restart"]))
            if args.only in (None, "failure"):
                print(f"Failure: {args.failure_users} users for {args.failure_duration:.0f} s ...", flush=True)
                report["failure"] = failure_benchmark(
                    moto, env, work_dir, users=args.failure_users, duration=args.failure_duration, **sizes
                )
                print(json.dumps({k: report["failure"][k] for k in ("readyz", "recovery", "audit", "invariants")}))
    finally:
        moto.stop()
    report["load_average_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Wrote {args.output}")
    return report


if __name__ == "__main__":
    main()
