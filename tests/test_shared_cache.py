"""API instances sharing one real Redis: every throttle and lockout holds across them.

A real ``redis-server`` (Debian's package; ``make test`` installs it) on a free
port, and two gunicorn instances on their own ports, each started from its
own working directory with its own SQLite database, so that nothing but
Redis can make them share. Requests alternate between the instances.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import gunicorn_process
from devtools.embedded_dynamodb import free_port

pytestmark = [pytest.mark.slow]

REDIS = shutil.which("redis-server")
if REDIS is None:
    pytestmark.append(pytest.mark.skip(reason="no redis-server: `make test` installs Debian's package"))


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(REDIS), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_table(moto_server) -> Iterator[str]:
    """A table of the module's own: the instances are started once for all its tests."""
    import boto3

    from spaces.dynamodb import table_schema

    name = f"shared-{uuid.uuid4().hex[:10]}"
    client = boto3.client("dynamodb", endpoint_url=moto_server.endpoint_url, region_name="us-east-1")
    client.create_table(**table_schema(name))
    yield name
    client.delete_table(TableName=name)


@pytest.fixture(scope="module")
def two_instances(
    redis: RedisServer, moto_server, shared_table: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[gunicorn_process.GunicornServer]]:
    secret = "shared-secret-of-both-instances-" + uuid.uuid4().hex + uuid.uuid4().hex
    instances = []
    for name in ("a", "b"):
        directory = tmp_path_factory.mktemp(f"instance-{name}")
        env = gunicorn_process.production_environment(
            DJANGO_SECRET_KEY=secret,
            DJANGO_SECURE_SSL_REDIRECT="0",
            DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
            CACHE_URL=redis.url,
            DYNAMODB_HOST=moto_server.endpoint_url,
            DYNAMODB_TABLE=shared_table,
            PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
            THROTTLE_INVITE_JOIN="4/min",
            THROTTLE_SPACE_CREATE="3/min",
            LOGIN_FAILURES_PER_USERNAME="3",
        )
        subprocess.run(  # each instance has its own database
            [sys.executable, str(gunicorn_process.BASE_DIR / "manage.py"), "migrate", "--noinput", "-v", "0"],
            cwd=directory,
            env={**env, "PYTHONPATH": str(gunicorn_process.BASE_DIR)},
            check=True,
        )
        instances.append(gunicorn_process.start(env=env, workers=1, threads=2, cwd=directory))
    yield instances
    for instance in instances:
        instance.stop()


def call(server: gunicorn_process.GunicornServer, method: str, path: str, body: dict | None = None, token: str = ""):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": "127.0.0.1", "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    status, payload = response.status, response.read()
    connection.close()
    return status, payload


def token_for(user_id: str, secret: str) -> str:
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken

    return TokenBackend("HS256", signing_key=secret).encode({**AccessToken().payload, "user_id": user_id})


def test_join_guesses_are_throttled_across_instances(two_instances) -> None:
    token = token_for(str(uuid.uuid4()), two_instances[0].env["DJANGO_SECRET_KEY"])

    statuses = [
        call(two_instances[n % 2], "POST", "/api/spaces/join", {"invite_code": f"GUESS{n:03d}"}, token)[0]
        for n in range(6)
    ]

    assert statuses == [400, 400, 400, 400, 429, 429]


def test_creates_are_throttled_across_instances(two_instances) -> None:
    token = token_for(str(uuid.uuid4()), two_instances[0].env["DJANGO_SECRET_KEY"])

    statuses = [call(two_instances[n % 2], "POST", "/api/spaces", {"name": f"S{n}"}, token)[0] for n in range(4)]

    assert statuses == [201, 201, 201, 429]


def test_failed_logins_lock_the_username_on_every_instance(two_instances) -> None:
    attempts = [
        call(two_instances[n % 2], "POST", "/api/auth/token/", {"username": "ada", "password": f"wrong {n}"})[0]
        for n in range(3)
    ]

    assert attempts == [401, 401, 401]
    assert call(two_instances[1], "POST", "/api/auth/token/", {"username": "ada", "password": "x"})[0] == 429
    assert call(two_instances[0], "POST", "/api/auth/token/", {"username": "ada", "password": "x"})[0] == 429


def test_readiness_reports_redis(two_instances, redis: RedisServer) -> None:
    assert call(two_instances[0], "GET", "/readyz")[0] == 200

    redis.stop()
    try:
        status, payload = call(two_instances[0], "GET", "/readyz")
    finally:
        redis.start()

    assert (status, json.loads(payload)) == (503, {"status": "unavailable", "reason": "cache_unreachable"})
    deadline = time.monotonic() + 10
    while call(two_instances[0], "GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert call(two_instances[0], "GET", "/readyz")[0] == 200
