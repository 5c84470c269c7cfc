"""The servers the project starts, from outside: slow clients, planned restarts, body limits, and their own logs."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import gunicorn_process
from devtools.embedded_dynamodb import free_port
from tests.test_deployment import signed_access_token

BASE_DIR = Path(__file__).resolve().parent.parent
CODE = "KQ7MZ3XH"  # an invite code that must never reach a log line


@dataclass
class Server:
    port: int
    log: Path
    token: str

    def get(self, path: str, timeout: float = 10) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        connection.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        status = connection.getresponse().status
        connection.close()
        return status


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django's tables, made once for the module; each server gets a copy."""
    database = tmp_path_factory.mktemp("database") / "db.sqlite3"
    env = gunicorn_process.production_environment(DATABASE_URL=f"sqlite:///{database}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE_DIR, env=env, check=True, timeout=120)
    return database


def server_environment(tmp_path: Path, dynamo_table, database: Path, **overrides: str) -> dict[str, str]:
    shutil.copy(database, tmp_path / "db.sqlite3")
    return gunicorn_process.production_environment(
        DYNAMODB_HOST=dynamo_table.host,
        DYNAMODB_TABLE=dynamo_table.table_name,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **overrides,
    )


@pytest.fixture
def gunicorn(
    tmp_path: Path, dynamo_table, migrated_database: Path
) -> Iterator[tuple[Server, gunicorn_process.GunicornServer]]:
    """gunicorn with the production settings and config, 2 workers, its output in a file."""
    env = server_environment(tmp_path, dynamo_table, migrated_database)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = gunicorn_process.start(env=env, workers=2, output=output)
        token = signed_access_token(str(uuid.uuid4()), env["DJANGO_SECRET_KEY"])
        yield Server(process.port, log, token), process
        process.stop()


@pytest.fixture
def runserver(tmp_path: Path, dynamo_table, migrated_database: Path) -> Iterator[Server]:
    """Django's development server as `make run` starts it (debug on), its output in a file."""
    env = server_environment(tmp_path, dynamo_table, migrated_database, DJANGO_DEBUG="1")
    port, log = free_port(), tmp_path / "runserver.log"
    with log.open("wb") as output:
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=output, stderr=output)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield Server(port, log, signed_access_token(str(uuid.uuid4()), env["DJANGO_SECRET_KEY"]))
        process.terminate()  # how it stops is test_make_run's; here only what it answered and logged
        process.wait(timeout=30)


# --- slow clients ------------------------------------------------------------------------------------


def trickle_headers(port: int, stop: threading.Event) -> None:
    """A client sending its request's head one header line every 4 s, never finishing it."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while not stop.wait(4):
            sock.sendall(b"X-Slow: 1\r\n")


@pytest.mark.slow
def test_48_slow_header_clients_starve_neither_the_probe_nor_the_api(gunicorn) -> None:
    server, _ = gunicorn
    stop = threading.Event()
    clients = [threading.Thread(target=trickle_headers, args=(server.port, stop)) for _ in range(48)]
    for client in clients:
        client.start()
    try:
        time.sleep(5)  # every slow client connected and past its first header line

        # The bound is 1 s; the margin is for a busy machine (gthread workers never answered while they stayed).
        answers = [server.get("/healthz", timeout=5), server.get("/api/spaces", timeout=5)]
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert answers == [200, 200]


# --- planned restarts ---------------------------------------------------------------------------------


def keep_asking(server: Server, stop: threading.Event, outcomes: list[int | str]) -> None:
    """A client on one kept-alive connection (reopened only after a `Connection: close`), no think time."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    while not stop.is_set():
        try:
            connection.request("GET", "/api/spaces", headers={"Authorization": f"Bearer {server.token}"})
            response = connection.getresponse()
            response.read()
            outcomes.append(response.status)
        except (OSError, http.client.HTTPException) as error:
            outcomes.append(type(error).__name__)
            connection.close()
    connection.close()


@pytest.mark.slow
def test_restarting_workers_under_load_loses_no_request(gunicorn) -> None:
    server, process = gunicorn
    first_workers = set(process.worker_pids())
    stop = threading.Event()
    outcomes: list[int | str] = []
    clients = [threading.Thread(target=keep_asking, args=(server, stop, outcomes)) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.5)
        os.kill(min(first_workers), signal.SIGTERM)  # one worker stops, as after its max_requests
        time.sleep(2)
        process.process.send_signal(signal.SIGHUP)  # every worker replaced, as on a configuration reload
        time.sleep(3)
    finally:
        stop.set()
        for client in clients:
            client.join()

    assert not first_workers & set(process.worker_pids())
    assert len(outcomes) > 100
    assert [outcome for outcome in outcomes if outcome != 200] == []


# --- request bodies over the limit ----------------------------------------------------------------------


def send_ignoring_a_close(sock: socket.socket, body: bytes) -> None:
    with contextlib.suppress(OSError):  # the server answered and closed, or the test did
        sock.sendall(body)


def refused_answer(port: int, head: bytes, body: bytes) -> bytes:
    """The answer to a request whose body is still being sent (a server may answer before reading it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sender = threading.Thread(target=send_ignoring_a_close, args=(sock, body))
        sender.start()
        answer = b""
        while b"detail" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        sock.shutdown(socket.SHUT_RDWR)
        sender.join()
        return answer


POST_HEAD = b"POST /api/spaces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(params=["runserver", "gunicorn"])
def any_server(request: pytest.FixtureRequest) -> Server:
    found = request.getfixturevalue(request.param)
    return found if isinstance(found, Server) else found[0]


@pytest.mark.slow
def test_a_20_mb_body_is_a_413_on_every_server(any_server) -> None:
    body = b"x" * 20_000_000

    answer = refused_answer(any_server.port, POST_HEAD + b"Content-Length: %d\r\n\r\n" % len(body), body)

    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"larger than" in answer


@pytest.mark.slow
def test_a_chunked_body_is_a_411_on_every_server(any_server) -> None:
    # The head only: the development server would read a chunk as its next request, and answer it with a reset.
    answer = refused_answer(any_server.port, POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"")

    assert answer.startswith(b"HTTP/1.1 411"), answer[:300]
    assert b"Content-Length" in answer


# --- the servers' own log lines ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_development_servers_request_lines_carry_no_invite_code(runserver) -> None:
    for path in (f"/join/{CODE}", f"/api/invites/{CODE}", f"/join/?code={CODE}", f"/no/such/{CODE}"):
        runserver.get(path)
    time.sleep(0.5)  # the line is written after the answer

    lines = runserver.log.read_text().splitlines()
    assert [line for line in lines if "api/invites/(?P<code>" in line]  # the route pattern instead
    assert [line for line in lines if CODE in line] == []


@pytest.mark.slow
def test_gunicorns_error_log_carries_no_invite_code_of_a_malformed_request(gunicorn) -> None:
    server, _ = gunicorn
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET /join/{CODE}\r\nHost: 127.0.0.1\r\n\r\n".encode())  # no HTTP version
        answer = sock.recv(65536)
    time.sleep(0.5)

    assert answer.startswith(b"HTTP/1.1 400")
    log = server.log.read_text()
    assert "Invalid request" in log
    assert CODE not in log
