"""``make run`` as a newcomer meets it: refuses taken ports before touching anything, walks itself, stops clean."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.embedded_dynamodb import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_embedded.sh"


def run_script(**ports: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DYNAMODB_", "DATABASE_"))}
    env.update({name: str(port) for name, port in ports.items()})
    return subprocess.Popen(
        ["bash", str(SCRIPT)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach
    )


@pytest.fixture
def taken_port() -> Iterator[tuple[int, socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield listener.getsockname()[1], listener
    listener.close()


def nobody_connected(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return True
    connection.close()
    return False


@pytest.mark.parametrize("taken", ["DYNAMODB_PORT", "WEB_PORT"])
def test_a_taken_port_stops_make_run_before_anything_starts(taken_port, taken: str) -> None:
    port, listener = taken_port
    other = "WEB_PORT" if taken == "DYNAMODB_PORT" else "DYNAMODB_PORT"
    started = time.monotonic()

    process = run_script(**{taken: port, other: free_port()})
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 2
    assert time.monotonic() - started < 30
    assert f"Port {port} on 127.0.0.1 is already in use" in stderr
    assert f"{taken}=" in stderr  # how to choose another one
    assert nobody_connected(listener)  # nothing was sent to the program that owns the port


def read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    """The script's output lines up to the first that holds ``marker`` (read by a thread: no blocking reads)."""
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.5).rstrip("\n"))
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if marker in seen[-1]:
            return seen
    raise AssertionError(f"no {marker!r} within {timeout} s: {seen}")


def post(url: str, body: dict | None = None, token: str = "") -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else b""
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as answer:
        return json.loads(answer.read())


def test_make_run_serves_the_demo_its_walk_through_works_and_ctrl_c_leaves_nothing(tmp_path) -> None:
    dynamo_port, web_port = free_port(), free_port()
    process = run_script(DYNAMODB_PORT=dynamo_port, WEB_PORT=web_port)
    try:
        lines = read_until(process, "Press Ctrl-C to stop", timeout=120)
        walkthrough = next(line for line in lines if "/invite -H" in line)
        space_id = walkthrough.split("/api/spaces/")[1].split("/invite")[0]
        base = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)

        alice = post(f"{base}/api/auth/token/", {"username": "alice", "password": "alice-demo-pass"})["access"]
        code = post(f"{base}/api/spaces/{space_id}/invite", token=alice)["invite_code"]
        bob = post(f"{base}/api/auth/token/", {"username": "bob", "password": "bob-demo-pass"})["access"]
        joined = post(f"{base}/api/spaces/join", {"invite_code": code}, token=bob)

        assert joined["spaceId"] == space_id
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in its terminal
        process.communicate(timeout=60)

    deadline = time.monotonic() + 20
    while (listening(dynamo_port) or listening(web_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not listening(dynamo_port) and not listening(web_port)  # nothing left running


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
