"""``make run`` as a newcomer meets it: refuses taken ports before touching anything, walks itself, stops clean."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.embedded_dynamodb import free_port

pytestmark = [pytest.mark.slow, pytest.mark.moto_only("`make run` starts moto, the embedded DynamoDB")]

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
        preexec_fn=_as_from_a_terminal,
    )


def _as_from_a_terminal() -> None:
    # A shell started with SIGINT ignored or blocked can never trap it: start it as a terminal would.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
    threading.Thread(target=lambda: list(map(lines.put, process.stdout or ())), daemon=True).start()
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


def served(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)


def printed(banner: list[str], label: str) -> str:
    """What the walk-through prints after ``label`` (a URL or a command), as a reader would copy it."""
    return next(line.split(label, 1)[1].strip() for line in banner if line.strip().startswith(label))


def run_commands(commands: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shell = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(commands)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert shell.returncode == 0, shell.stderr
    return shell


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return match[1]


class Browser:
    """A visitor with cookies; a form is sent with the CSRF token of the page it is on, as a browser would."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        self.page = ""

    def open(self, url: str, form: dict[str, str] | None = None) -> str:
        data = None
        if form is not None:
            token = found(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.page)
            data = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **form}).encode()
        with self.opener.open(url, data=data, timeout=10) as answer:
            self.page = answer.read().decode()
        return self.page


def test_make_run_serves_the_demo_its_walk_through_works_as_printed_and_ctrl_c_leaves_nothing() -> None:
    dynamo_port, web_port = free_port(), free_port()
    process = run_script(DYNAMODB_PORT=dynamo_port, WEB_PORT=web_port)
    try:
        banner = read_until(process, "Press Ctrl-C to stop", timeout=120)
        base = f"http://127.0.0.1:{web_port}"
        served(base)
        home = Browser().open(base + "/")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DYNAMODB_", "DATABASE_"))}
        api_steps = [line.strip() for line in banner if line.startswith(("  ALICE=", "  curl ", "  CODE=", "  BOB="))]

        listed, code, joined = run_commands(api_steps, env).stdout.splitlines()
        link, hint = printed(banner, "The join link:").split(maxsplit=1)
        link = link.replace("$CODE", code)
        username, password = found(r"sign in as (\w+ / \S+):", hint).split(" / ")
        browser = Browser()
        browser.open(base + found(r'href="(/accounts/login/[^"]+)"', browser.open(link)))
        browser.open(f"{base}/accounts/login/", {"username": username, "password": password, "next": f"/join/{code}"})
        joined_by_link = browser.open(link, {})
        for _ in range(11):  # reloads: the production limit (10/min per address) would answer 429
            browser.open(link)
        admin = browser.open(printed(banner, "The admin:").split()[0])
        docs = browser.open(printed(banner, "API docs:"))
        backfill_preview = run_commands([printed(banner, "Backfill preview:")], env)

        space = next(s for s in json.loads(listed)["results"] if s["name"] == "Book Circle")
        assert json.loads(joined)["spaceId"] == space["spaceId"]
        assert "You are now a member of Book Circle" in joined_by_link
        assert "Site administration" in admin and "swagger-ui" in docs
        assert "DRY RUN COMPLETE" in backfill_preview.stdout
        assert all(re.search(f'href="{path}"', home) for path in ("/join/", "/admin/", "/api/docs"))
        assert "Demo limits, relaxed" in "\n".join(banner)
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
