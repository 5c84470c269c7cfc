"""The embedded DynamoDB: moto's server mode on 127.0.0.1, in its own process.

Used by ``make run`` (``python -m lifestyle_spaces.embedded_dynamodb``), by the
test suite and by the benchmarks. It speaks the real DynamoDB HTTP protocol,
so everything above botocore runs exactly as against AWS.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field


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
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded DynamoDB (moto server) in the foreground.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("DYNAMODB_PORT", "8001")))
    args = parser.parse_args()
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
