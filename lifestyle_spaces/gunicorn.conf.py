"""Gunicorn's production settings, from the environment (docs/operations.md): a greenlet per connection."""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gevent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


wsgi_app = "lifestyle_spaces.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# A slow client holds only its own greenlet (a gthread pool thread would be held while headers trickle in), and a
# worker stopping answers each kept-alive connection's next request with `Connection: close` instead of closing it.
worker_class = "gevent"
workers = _env_int("GUNICORN_WORKERS", os.cpu_count() or 2)
worker_connections = _env_int("GUNICORN_WORKER_CONNECTIONS", 1000)
# Far above DynamoDB's worst case (connect 2 s + read 5 s, 4 attempts): only a stuck worker is killed.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than a load balancer's idle timeout (AWS ALB: 60 s), or it may reuse a closed connection (502).
keepalive = _env_int("GUNICORN_KEEPALIVE", 75)
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
preload_app = False  # each worker builds its own botocore client after the fork
_SHARED_MEMORY = "/dev/shm"  # noqa: S108 - gunicorn's documented choice for containers
if Path(_SHARED_MEMORY).is_dir():
    worker_tmp_dir = _SHARED_MEMORY  # heartbeats on tmpfs: a slow disk must not get workers killed
accesslog = None  # our middleware logs every request, without paths that carry codes
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()

# A DynamoDB connection for each request in flight: botocore would open and drop the ones over its pool size.
os.environ.setdefault("DYNAMODB_MAX_POOL_CONNECTIONS", str(worker_connections))
# prometheus-client's multiprocess mode sums every worker's files; set before any worker imports it.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="lifestyle-metrics-")


def on_starting(server: Any) -> None:
    # Counters left by an earlier run would be added to ours.
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()


def post_worker_init(worker: Any) -> None:
    # Django only now, after gevent patched the worker: imported in the master, its database connections would be
    # one per OS thread, shared by every greenlet ("DatabaseWrapper objects created in a thread ...").
    from django.urls import get_resolver

    from lifestyle_spaces.server_logs import RouteNotTargetFilter
    from spaces.dynamodb import table_connection

    worker.log.error_log.addFilter(RouteNotTargetFilter())  # a malformed request's line names its route only
    # Built before the worker accepts (views, botocore's client): a second of CPU that would stall its connections.
    _ = get_resolver().resolve("/healthz"), table_connection().connection.client
    # A password hash (0.3 s of CPU) would stall every connection of a gevent worker: it runs in a real thread.
    if worker.cfg.worker_class_str == "gevent":
        pbkdf2_hmac = hashlib.pbkdf2_hmac
        hashlib.pbkdf2_hmac = lambda *args: gevent.get_hub().threadpool.apply(pbkdf2_hmac, args)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
