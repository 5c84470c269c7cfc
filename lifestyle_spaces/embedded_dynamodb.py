"""The embedded DynamoDB: moto's server mode on 127.0.0.1, in its own process.

Used by ``make run`` (``python -m lifestyle_spaces.embedded_dynamodb``), by the
test suite and by the benchmarks. It speaks the real DynamoDB HTTP protocol,
so everything above botocore runs exactly as against AWS.

moto's own ``moto_server`` serves requests on many threads, and its DynamoDB
model takes no locks, so nothing guarantees that two conditional writes to
one item cannot both pass their condition, which real DynamoDB never allows.
We run moto's WSGI application behind one lock instead, so each request is
applied atomically, as a real table applies each item write. Connections
still get a thread each (HTTP keep-alive keeps working); moto is bound by the
GIL, so little throughput is lost.
"""

from __future__ import annotations

import argparse
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
from typing import Any


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
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(port: int | None = None, *, timeout: float = 30.0, quiet: bool = True) -> EmbeddedDynamo:
    """Start moto's server on 127.0.0.1 and wait until it answers."""
    port = port or free_port()
    if not port_is_free(port):
        raise RuntimeError(f"port {port} on 127.0.0.1 is already in use; set DYNAMODB_PORT to another one")
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lifestyle_spaces.embedded_dynamodb", "--serve-here", "--port", str(port)],
        stdout=output,
        stderr=output,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    server = EmbeddedDynamo(port=port, process=process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with status {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1):  # noqa: S310
                return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"moto server did not answer on port {port} within {timeout:.0f} s")


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


def serve_here(port: int) -> None:
    """Serve moto's DynamoDB on 127.0.0.1:port in this process, until killed."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded DynamoDB (moto server) in the foreground.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DYNAMODB_PORT", "8001")))
    parser.add_argument("--serve-here", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_here:
        serve_here(args.port)
        return
    server = start(args.port, quiet=True)
    print(f"Embedded DynamoDB listening on {server.endpoint_url}", flush=True)

    def request_exit(*_: object) -> None:
        raise SystemExit(0)

    # Stop the child outside the signal handler: Popen.wait() is not reentrant.
    signal.signal(signal.SIGTERM, request_exit)
    signal.signal(signal.SIGINT, request_exit)
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
