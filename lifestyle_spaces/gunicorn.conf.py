"""Gunicorn settings for production (``make serve``; ``gunicorn -c lifestyle_spaces/gunicorn.conf.py``).

Every request spends most of its time waiting on DynamoDB, so each worker
process runs several threads (``gthread``), and the DynamoDB connection pool of
a worker (one botocore client per process) gets one connection per thread:
fewer would make threads queue for a connection, more would never be used.
docs/operations.md explains each knob; all are environment variables.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


wsgi_app = "lifestyle_spaces.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# One process per core: the threads below cover the waiting on DynamoDB.
workers = _env_int("GUNICORN_WORKERS", os.cpu_count() or 2)
threads = _env_int("GUNICORN_THREADS", 8)
# A worker silent for this long is killed and replaced. Far above DynamoDB's
# worst case (connect 2 s + read 5 s, 4 attempts) so only a truly stuck worker dies.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than a load balancer's idle timeout (AWS ALB: 60 s), or the balancer
# may reuse a connection gunicorn just closed and answer 502.
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)
# Recycle workers now and then (jittered so they do not all restart together).
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
# No preloading: each worker builds its own botocore client after the fork.
preload_app = False
_SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 - gunicorn's documented choice for containers
if _SHARED_MEMORY.is_dir():
    # The heartbeat file on tmpfs: a slow disk must not get workers killed.
    worker_tmp_dir = str(_SHARED_MEMORY)
# Our middleware logs every request with its id, without paths that carry codes.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()

# One DynamoDB connection per thread, unless the operator set the pool size.
os.environ.setdefault("DYNAMODB_MAX_POOL_CONNECTIONS", str(threads))

# Metrics from all workers: prometheus-client's multiprocess mode keeps each
# worker's counters in files under this directory. It must be set before any
# worker imports prometheus_client, which is why it is set here.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lifestyle-metrics-")


def on_starting(server: Any) -> None:
    # Counters left by an earlier run would be added to ours.
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    pool = _env_int("DYNAMODB_MAX_POOL_CONNECTIONS", threads)
    if pool < threads:
        logging.getLogger("gunicorn.error").warning(
            "DYNAMODB_MAX_POOL_CONNECTIONS=%s is below GUNICORN_THREADS=%s: threads will wait for connections",
            pool,
            threads,
        )


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
