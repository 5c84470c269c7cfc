"""Production settings and the real gunicorn server: deploy checks, config, throttles across workers."""

from __future__ import annotations

import http.client
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifestyle_spaces import gunicorn_process

BASE_DIR = Path(__file__).resolve().parent.parent


def run_in_production_env(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=gunicorn_process.production_environment(
            **{
                "DJANGO_ALLOWED_HOSTS": "spaces.example.com",
                # What make serve runs with: the HTTPS redirect on (behind a TLS-terminating balancer).
                "DJANGO_SECURE_SSL_REDIRECT": "1",
                **env,
            }
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deploy_check_reports_nothing_with_production_settings() -> None:
    result = run_in_production_env(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_deploy_check_flags_a_production_setup_without_the_https_redirect() -> None:
    result = run_in_production_env(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], DJANGO_SECURE_SSL_REDIRECT="0"
    )

    assert result.returncode != 0
    assert "security.W008" in result.stdout + result.stderr


def gunicorn_config(**env: str) -> dict[str, object]:
    """The settings gunicorn would read from our config file, in a fresh interpreter."""
    script = (
        "import json, os, runpy;"
        "c = runpy.run_path('lifestyle_spaces/gunicorn.conf.py');"
        "print(json.dumps({'workers': c['workers'], 'threads': c['threads'], 'worker_class': c['worker_class'],"
        " 'pool': os.environ['DYNAMODB_MAX_POOL_CONNECTIONS'], 'accesslog': c['accesslog'],"
        " 'metrics_dir': bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**gunicorn_process.production_environment(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_gunicorn_gives_each_thread_one_dynamodb_connection() -> None:
    config = gunicorn_config(GUNICORN_WORKERS="3", GUNICORN_THREADS="6")

    assert config["worker_class"] == "gthread"
    assert (config["workers"], config["threads"], config["pool"]) == (3, 6, "6")
    assert config["accesslog"] is None  # our middleware logs requests, without raw paths
    assert config["metrics_dir"] is True


def test_an_explicit_pool_size_is_left_alone() -> None:
    config = gunicorn_config(GUNICORN_THREADS="6", DYNAMODB_MAX_POOL_CONNECTIONS="12")

    assert config["pool"] == "12"


# --- the real server ---------------------------------------------------------------------


def answered_by(response: http.client.HTTPResponse) -> int:
    return int(response.headers["X-Worker-PID"])


def new_connection(server: gunicorn_process.GunicornServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def post_throttled(server: gunicorn_process.GunicornServer) -> tuple[int, int]:
    connection = new_connection(server)
    connection.request("POST", "/test-only/throttled", body=b"", headers={"Connection": "close"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, answered_by(response)


def post_throttled_avoiding(server: gunicorn_process.GunicornServer, busy_pid: int) -> tuple[int, int]:
    """POST while worker ``busy_pid`` is held busy, so the other worker must answer.

    A sync worker handles one request at a time and accepts nothing meanwhile;
    the kernel otherwise tends to hand every new connection to the same worker.
    """
    for _attempt in range(20):
        holder = new_connection(server)
        holder.request("GET", "/test-only/hold", headers={"Connection": "close"})
        held = holder.getresponse()  # headers arrive while the worker is still busy
        if answered_by(held) == busy_pid:
            answer = post_throttled(server)
            held.read()
            holder.close()
            return answer
        held.read()  # the wrong worker: let it finish and try again
        holder.close()
    pytest.fail(f"could not hold worker {busy_pid} busy")


@pytest.fixture
def two_worker_server(request: pytest.FixtureRequest, tmp_path: Path):
    cache_url = request.param(tmp_path) if callable(request.param) else request.param
    env = gunicorn_process.production_environment(
        DJANGO_SETTINGS_MODULE="tests.ops_site.settings",
        CACHE_URL=cache_url,
        THROTTLE_INVITE_JOIN="5/min",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        # Sync workers (one request at a time) let the test steer requests to each worker;
        # the cache is shared (or not) the same way whatever the worker class.
        GUNICORN_CMD_ARGS="--worker-class sync",
    )
    server = gunicorn_process.start(env=env, workers=2, threads=1)  # more threads would switch to gthread
    yield server
    server.stop()


def file_cache(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'cache'}"


def alternate_between_workers(server: gunicorn_process.GunicornServer, requests: int) -> list[tuple[int, int]]:
    answers = [post_throttled(server)]
    while len(answers) < requests:
        answers.append(post_throttled_avoiding(server, busy_pid=answers[-1][1]))
    return answers


@pytest.mark.slow
@pytest.mark.parametrize("two_worker_server", [file_cache], indirect=True)
def test_the_join_throttle_holds_across_gunicorn_workers(two_worker_server) -> None:
    answers = alternate_between_workers(two_worker_server, requests=12)

    workers = [pid for _, pid in answers]
    assert len(set(workers)) == 2
    assert all(one != next_one for one, next_one in itertools.pairwise(workers)), answers
    assert [status for status, _ in answers] == [200] * 5 + [429] * 7


@pytest.mark.slow
@pytest.mark.parametrize("two_worker_server", ["locmem://per-process"], indirect=True)
def test_a_per_process_cache_would_let_each_worker_allow_the_full_limit(two_worker_server) -> None:
    # The counter-example that shows the test above can fail: why CACHE_URL never defaults to memory.
    answers = alternate_between_workers(two_worker_server, requests=12)

    assert [status for status, _ in answers].count(200) == 10
