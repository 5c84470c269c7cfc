"""Run the app under gunicorn on a free 127.0.0.1 port, in its own process group.

For tests and benchmarks that need the real server: several worker processes,
production settings, the project's ``gunicorn.conf.py``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from devtools.embedded_dynamodb import free_port

BASE_DIR = Path(__file__).resolve().parent.parent
CONFIG_FILE = BASE_DIR / "lifestyle_spaces" / "gunicorn.conf.py"


def production_environment(**overrides: str) -> dict[str, str]:
    """A production-like environment (debug off, a random secret key) for 127.0.0.1."""
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "lifestyle_spaces.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Plain HTTP on loopback: there is no TLS terminator in front.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }
    env.update(overrides)
    return env


def child_pids(pid: int) -> list[int]:
    """The live children of a process, from /proc (Linux)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


@dataclass
class GunicornServer:
    port: int
    process: subprocess.Popen[bytes] = field(repr=False)
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the gunicorn master)."""
        return child_pids(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(
    *,
    env: dict[str, str],
    workers: int = 2,
    threads: int = 4,
    timeout: float = 60.0,
    output: IO[bytes] | int | None = subprocess.DEVNULL,
    cwd: Path | None = None,
) -> GunicornServer:
    """Start gunicorn with the project's config and wait until ``/healthz`` answers.

    ``cwd``: run from another directory (as another machine would), with the
    project on the Python path.
    """
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
        [sys.executable, "-m", "gunicorn", "-c", str(CONFIG_FILE)],
        cwd=cwd or BASE_DIR,
        env={
            **env,
            "PYTHONPATH": str(BASE_DIR),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
        },
        stdout=output,
        stderr=output,
    )
    server = GunicornServer(port=port, process=process, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=1):  # noqa: S310 - loopback
                if len(server.worker_pids()) >= workers:
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer on port {port} within {timeout:.0f} s")
