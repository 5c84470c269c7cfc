"""The embedded DynamoDB: moto's server mode on 127.0.0.1, in its own process.

Started by ``python manage.py run_embedded_dynamodb --port N`` (in the
foreground: ``make run`` does this) and by :func:`start`, which runs that same
command in the background for the test suite and the benchmarks. It speaks the real DynamoDB HTTP protocol,
so everything above botocore runs exactly as against AWS.

moto's own ``moto_server`` serves requests on many threads, and its DynamoDB
model takes no locks: nothing guarantees that two conditional writes to one
item cannot both pass their condition (real DynamoDB never allows it), and a
Scan iterating the table while a PutItem adds a partition fails with
"dictionary changed size during iteration". It also closes the connection
after every response, where real DynamoDB keeps HTTPS connections alive.
So we serve moto's WSGI application with gunicorn (one process, since moto
keeps its tables in memory; a thread per connection, with keep-alive) behind
one lock, so each request is applied atomically, as a real table applies each
item write. moto holds the GIL for nearly all of a request anyway, so the
lock costs little throughput. :mod:`devtools.moto_patches` is applied first:
transactions and queries cost what they touch, not the table, and a repeated
ClientRequestToken is idempotent.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANAGE_PY = Path(__file__).resolve().parent.parent / "manage.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class EmbeddedDynamo:
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT is gunicorn's quick shutdown; SIGTERM would wait for idle keep-alive connections.
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def gunicorn_argv(port: int, *, threads: int = 32) -> list[str]:
    """The one way the embedded DynamoDB is served: moto's WSGI app under gunicorn."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        f"--bind=127.0.0.1:{port}",
        "--workers=1",  # one process: moto keeps its tables in memory
        f"--threads={threads}",
        "--worker-class=gthread",
        "--keep-alive=60",
        "--timeout=600",
        "--log-level=warning",
        "devtools.embedded_dynamodb:wsgi_app()",
    ]


def run_in_foreground(port: int, *, threads: int = 32) -> None:
    """Become the embedded DynamoDB on ``port`` (``manage.py run_embedded_dynamodb``); never returns.

    The process is replaced by gunicorn, so its PID is the server's and
    Ctrl-C (SIGINT, gunicorn's quick shutdown) stops it.
    """
    if not port_is_free(port):
        raise PortInUse(port)
    os.environ["MOTO_ALLOW_NONEXISTENT_REGION"] = "true"
    os.execv(sys.executable, gunicorn_argv(port, threads=threads))  # noqa: S606 - our own interpreter


class PortInUse(RuntimeError):
    def __init__(self, port: int) -> None:
        super().__init__(f"port {port} on 127.0.0.1 is already in use; set DYNAMODB_PORT to another one")
        self.port = port


def start(port: int | None = None, *, timeout: float = 30.0, quiet: bool = True, threads: int = 32) -> EmbeddedDynamo:
    """Start ``manage.py run_embedded_dynamodb`` in the background and wait until it answers.

    Tests and benchmarks start the server exactly as ``make run`` does.
    """
    port = port or free_port()
    if not port_is_free(port):
        raise PortInUse(port)
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, str(MANAGE_PY), "run_embedded_dynamodb", f"--port={port}", f"--threads={threads}"],
        stdout=output,
        stderr=output,
        # The command needs only the development settings; it serves no Django requests.
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "lifestyle_spaces.settings", "DJANGO_DEBUG": "1"},
    )
    server = EmbeddedDynamo(port=port, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the embedded DynamoDB exited with status {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1):  # noqa: S310
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"the embedded DynamoDB did not answer on port {port} within {timeout:.0f} s")


class OneRequestAtATime:
    """WSGI middleware: apply each request, body included, under one lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def wsgi_app() -> OneRequestAtATime:
    """moto's DynamoDB, patched, behind the lock; gunicorn loads it as ``embedded_dynamodb:wsgi_app()``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from devtools import moto_patches

    moto_patches.apply()
    return OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
