"""Lockouts, revocations and throttles in the security table (issue 21, findings 1-5): nothing evicts them, every
count is atomic, and an outage of the store is a 503, never a 500 and never a skipped check.

The in-process tests use the test client; the rest run against one gunicorn (several workers, production settings,
the default configuration) whose DynamoDB is reached through a TCP forwarder that a test kills.
"""

from __future__ import annotations

import functools
import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.security import revoke_tokens_issued_before, take
from benchmarks.load_test import start_forwarder
from devtools import gunicorn_process
from devtools.embedded_dynamodb import free_port
from spaces.dynamodb import SECURITY_TABLE_SUFFIX, TableItem, botocore_client
from spaces.table import table_create_if_missing
from tests.api_support import as_user, new_user_id

PASSWORD = "correct horse battery staple"
LOCKED = re.compile(r"Too many failed sign-in attempts\. Try again in \d+ minute\(s\)\.")
FULLWIDTH = str.maketrans({c: chr(ord(c) + 0xFEE0) for c in "admin2ADMIN"})
VARIANTS = ["ADMIN2", "  admin2 ", "admin2".translate(FULLWIDTH), "Admin2".translate(FULLWIDTH)]  # case, spaces


def wait_for_window(seconds: int, needed: float) -> None:
    """Fixed windows: let one with at least ``needed`` seconds left begin, so a burst falls in one window."""
    left = seconds - time.time() % seconds
    if left < needed:
        time.sleep(left + 0.05)


# --- in process: the store, the three sign-in paths, the pages ---------------------------------------------------


def test_the_security_table_is_created_with_ttl_on_expires(dynamo_table) -> None:
    name = dynamo_table.table_name + SECURITY_TABLE_SUFFIX
    ttl = botocore_client().describe_time_to_live(TableName=name)["TimeToLiveDescription"]

    assert ttl["AttributeName"] == "expires" and ttl["TimeToLiveStatus"] in {"ENABLED", "ENABLING"}


def test_concurrent_takes_let_exactly_the_limit_through(dynamo_table) -> None:
    wait_for_window(60, 3)
    barrier = threading.Barrier(12)

    def one(_: int) -> int:
        barrier.wait()
        return take("burst", 5, 60)

    with ThreadPoolExecutor(12) as pool:
        waits = list(pool.map(one, range(12)))

    assert waits.count(0) == 5
    assert all(0 < wait <= 60 for wait in waits if wait)


def test_an_old_window_never_counts_even_before_ttl_deletes_it(dynamo_table) -> None:
    time.sleep(2 - time.time() % 2)  # a window starts: both takes fall in it (fixed windows of 2 s)
    assert take("slow", 1, 2) == 0
    assert take("slow", 1, 2) > 0
    time.sleep(2 - time.time() % 2)

    assert take("slow", 1, 2) == 0  # the full item of the last window is still there; its key is not this one's


def _sign_in(client: Any, path: str, username: str, password: str) -> Any:
    if path == "token":
        return client.post("/api/auth/token/", {"username": username, "password": password}, format="json")
    return client.post(path, {"username": username, "password": password})


def _refused(path: str, response: Any) -> bool:
    if path == "token":
        return response.status_code == 429 and int(response["Retry-After"]) > 0
    return response.status_code == 200 and bool(LOCKED.search(response.content.decode()))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("path", ["token", "/admin/login/", "/accounts/login/"])
def test_every_form_of_a_locked_out_username_is_refused(api_client, db, dynamo_table, settings, path, variant) -> None:
    get_user_model().objects.create_superuser("admin2", password=PASSWORD)
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    wait_for_window(settings.LOGIN_LOCKOUT_SECONDS, 3)
    for n in range(3):
        _sign_in(api_client, path, "admin2", f"wrong {n}")

    response = _sign_in(api_client, path, variant, PASSWORD)

    assert _refused(path, response)
    assert "_auth_user_id" not in api_client.session


def test_failures_under_variants_count_for_one_username(api_client, db, dynamo_table, settings) -> None:
    get_user_model().objects.create_user("admin2", password=PASSWORD)
    settings.LOGIN_FAILURES_PER_USERNAME = 3
    wait_for_window(settings.LOGIN_LOCKOUT_SECONDS, 3)
    statuses = [_sign_in(api_client, "token", variant, "wrong").status_code for variant in VARIANTS]

    assert statuses == [401, 401, 401, 429]
    assert _sign_in(api_client, "token", "admin2", PASSWORD).status_code == 429


def test_a_sign_in_gives_its_attempt_back(api_client, db, dynamo_table, settings) -> None:
    get_user_model().objects.create_user("ada", password=PASSWORD)
    settings.LOGIN_FAILURES_PER_USERNAME = 2
    wait_for_window(settings.LOGIN_LOCKOUT_SECONDS, 3)

    statuses = [_sign_in(api_client, "token", "ada", PASSWORD).status_code for _ in range(4)]

    assert statuses == [200] * 4


def test_authentication_costs_one_security_read_and_a_throttle_one_write(api_client, dynamo_table, dynamo_calls):
    as_user(api_client, new_user_id())
    dynamo_calls.reset()

    api_client.get("/api/spaces")
    read = dict(dynamo_calls.security)
    dynamo_calls.reset()
    api_client.post("/api/spaces/join", {"invite_code": "ABCDEFGH"}, format="json")

    assert read == {"GetItem": 1}
    assert dict(dynamo_calls.security) == {"GetItem": 1, "UpdateItem": 1}


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/admin/login/"), ("post", "/accounts/login/"), ("get", "/join/AAAAAAAA")],
)
def test_the_pages_answer_503_when_the_store_is_down(client, db, dynamodb_unreachable, method, path) -> None:
    response = getattr(client, method)(path, {"username": "ada", "password": PASSWORD})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "temporarily unavailable" in response.content.decode()


def test_a_regeneration_refused_by_the_store_is_503_not_the_guides_500(api_client, space_people, monkeypatch):
    def down(*_: Any, **__: Any) -> int:
        from accounts.security import SecurityStoreUnavailable

        raise SecurityStoreUnavailable("the security table cannot be reached or used: test")

    monkeypatch.setattr("accounts.security.take", down)
    as_user(api_client, space_people.owner)

    response = api_client.post(f"/api/spaces/{space_people.space.id}/invite")

    assert (response.status_code, response["Retry-After"]) == (503, "5")


# --- against gunicorn ----------------------------------------------------------------------------------------------


class Site:
    def __init__(self, server: gunicorn_process.GunicornServer, forwarder: Callable[[bool], None]) -> None:
        self.server, self.set_store_up = server, forwarder

    def call(
        self, method: str, path: str, body: Any = None, *, token: str = "", address: str = "", form: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        headers = {"Host": "127.0.0.1"}
        if address:
            headers["X-Forwarded-For"] = address
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None and form:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Cookie"] = f"csrftoken={body['csrfmiddlewaretoken']}"
            payload = urllib.parse.urlencode(body)
        elif body is not None:
            headers["Content-Type"], payload = "application/json", json.dumps(body)
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def sign_in(self, username: str, password: str, address: str) -> int:
        return self.call("POST", "/api/auth/token/", {"username": username, "password": password}, address=address)[0]

    def token(self, user_id: str) -> str:
        from rest_framework_simplejwt.backends import TokenBackend
        from rest_framework_simplejwt.tokens import AccessToken

        secret = self.server.env["DJANGO_SECRET_KEY"]
        return TokenBackend("HS256", signing_key=secret).encode({**AccessToken().payload, "user_id": user_id})


USERS = ("ada", "bob", "carol", "dave", "erin")
SETUP = f"""
import django
django.setup()
from django.core.management import call_command
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
call_command("migrate", verbosity=0)
# As make serve does (pages need the manifest), but only what the sign-in and join pages use: seconds less.
call_command("collectstatic", "--noinput", verbosity=0, ignore_patterns=["drf_spectacular_sidecar", "vendor"])
password = make_password({PASSWORD!r})  # hashed once, at full strength
get_user_model().objects.bulk_create(get_user_model()(username=name, password=password) for name in {USERS!r})
"""


@pytest.fixture(scope="module")
def site(moto_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """gunicorn (3 workers) with production settings and the default configuration, DynamoDB behind a forwarder."""
    table, port = f"security-{uuid.uuid4().hex[:10]}", free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TableItem.Meta, "table_name", table)
        patch.setattr(TableItem.Meta, "host", moto_server.endpoint_url)
        table_create_if_missing()
        client = botocore_client()  # for the teardown
    forwarder = [start_forwarder(port, moto_server.port)]

    def set_store_up(up: bool) -> None:
        forwarder[0].kill()
        forwarder[0].wait()
        if up:
            forwarder[0] = start_forwarder(port, moto_server.port)

    directory = tmp_path_factory.mktemp("security-site")
    env = gunicorn_process.production_environment(
        DATABASE_URL=f"sqlite:///{directory / 'db.sqlite3'}",
        DYNAMODB_HOST=f"http://127.0.0.1:{port}",
        DYNAMODB_TABLE=table,
        DYNAMODB_MAX_ATTEMPTS="2",
        DYNAMODB_CONNECT_TIMEOUT="1",
        TRUSTED_PROXY_COUNT="1",
        PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"),
        DJANGO_STATIC_ROOT=str(directory / "static"),
    )
    subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=directory,
        env={**env, "PYTHONPATH": str(gunicorn_process.BASE_DIR)},
        check=True,
    )
    server = gunicorn_process.start(env=env, workers=3, threads=8, cwd=directory)
    try:
        yield Site(server, set_store_up)
    finally:
        server.process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown
        server.stop()
        set_store_up(False)
        for name in (table, table + SECURITY_TABLE_SUFFIX):
            client.delete_table(TableName=name)


@pytest.fixture
def site_table(site: Site, connect_with: Any, moto_server: Any) -> None:
    """This process talks to the site's tables directly (not through the forwarder)."""
    connect_with(DYNAMODB_TABLE=site.server.env["DYNAMODB_TABLE"], DYNAMODB_HOST=moto_server.endpoint_url)


def _token_pair(site: Site, username: str, address: str) -> dict[str, str]:
    status, _, body = site.call(
        "POST", "/api/auth/token/", {"username": username, "password": PASSWORD}, address=address
    )
    assert status == 200, body
    return json.loads(body)


@pytest.mark.slow
def test_an_address_flood_erases_no_lockout_and_no_revocation(site: Site, site_table: None) -> None:
    wait_for_window(900, 30)  # the default lockout window
    pair = _token_pair(site, "ada", "10.1.0.1")
    time.sleep(1.0)  # tokens carry whole seconds
    revoke_tokens_issued_before(
        AccessToken(cast(Any, pair["access"]), verify=False)["user_id"], timezone.now()
    )  # as a password change does
    assert [site.sign_in("bob", f"wrong {n}", "10.1.0.2") for n in range(5)] == [401] * 5

    def visit(n: int) -> int:
        # A malformed code: the page reads nothing, but every request counts against its address, as any code's.
        return site.call("GET", "/join/A", address=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")[0]

    with ThreadPoolExecutor(16) as pool:
        flood = Counter(pool.map(visit, range(100_000, 101_500)))

    assert flood == {404: 1500}
    assert site.sign_in("bob", PASSWORD, "10.1.0.3") == 429
    assert site.call("GET", "/api/spaces", token=pair["access"])[0] == 401


@pytest.mark.slow
def test_concurrent_sign_ins_check_at_most_the_limit_of_passwords(site: Site) -> None:
    wait_for_window(900, 10)
    barrier = threading.Barrier(16)

    def attempt(n: int) -> int:
        barrier.wait()
        return site.sign_in("carol", PASSWORD if n == 7 else f"wrong {n}", "10.2.0.1")

    with ThreadPoolExecutor(16) as pool:
        statuses = Counter(pool.map(attempt, range(16)))
    more = [site.sign_in("carol", "wrong again", "10.2.0.1") for _ in range(5 - statuses[401])]

    assert statuses[401] <= 5 and statuses[200] <= 1 and statuses[500] == 0, statuses
    assert set(statuses) <= {200, 401, 429}
    assert more == [401] * len(more)
    assert site.sign_in("carol", PASSWORD, "10.2.0.1") == 429  # locked: the right password is not checked


@pytest.mark.slow
def test_concurrent_joins_over_the_limit_let_exactly_the_limit_through(site: Site) -> None:
    token = site.token(str(uuid.uuid4()))
    wait_for_window(60, 15)
    barrier = threading.Barrier(30)

    def join(n: int) -> int:
        barrier.wait()
        return site.call("POST", "/api/spaces/join", {"invite_code": f"GUESS{n:03d}"}, token=token)[0]

    with ThreadPoolExecutor(30) as pool:
        statuses = Counter(pool.map(join, range(30)))

    assert statuses == {400: 10, 429: 20}


@pytest.mark.slow
def test_concurrent_refreshes_of_one_token_let_exactly_one_through(site: Site) -> None:
    refresh = _token_pair(site, "dave", "10.3.0.1")["refresh"]
    barrier = threading.Barrier(12)

    def use(_: int) -> int:
        barrier.wait()
        return site.call("POST", "/api/auth/token/refresh/", {"refresh": refresh})[0]

    with ThreadPoolExecutor(12) as pool:
        statuses = Counter(pool.map(use, range(12)))

    assert statuses == {200: 1, 401: 11}


def _csrf_form(site: Site, path: str, username: str, password: str) -> dict[str, str]:
    body = site.call("GET", path)[2]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert token is not None
    return {"csrfmiddlewaretoken": token.group(1).decode(), "username": username, "password": password}


@pytest.mark.slow
def test_the_store_killed_mid_burst_is_503_everywhere_and_nothing_fails_open(site: Site) -> None:
    space = json.loads(
        site.call("POST", "/api/spaces", {"name": "Kept"}, token=(owner := site.token(new_user_id())))[2]
    )
    locked_user = "erin"
    assert [site.sign_in(locked_user, "wrong", "10.4.0.1") for _ in range(5)] == [401] * 5
    forms = {path: _csrf_form(site, path, locked_user, PASSWORD) for path in ("/admin/login/", "/accounts/login/")}
    code, space_path = space["inviteCode"], f"/api/spaces/{space['spaceId']}"
    requests: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]] = {
        "locked sign-in": lambda: site.call(
            "POST", "/api/auth/token/", {"username": locked_user, "password": PASSWORD}, address="10.4.0.2"
        ),
        "list": lambda: site.call("GET", "/api/spaces", token=owner),
        "create": lambda: site.call("POST", "/api/spaces", {"name": "x"}, token=owner),
        "get": lambda: site.call("GET", space_path, token=owner),
        "members": lambda: site.call("GET", f"{space_path}/members", token=owner),
        "regenerate": lambda: site.call("POST", f"{space_path}/invite", token=owner),
        "join": lambda: site.call("POST", "/api/spaces/join", {"invite_code": code}, token=site.token(new_user_id())),
        "preview": lambda: site.call("GET", f"/api/invites/{code}", token=owner),
        "join page": lambda: site.call("GET", f"/join/{code}", address=f"10.5.{uuid.uuid4().int % 250}.1"),
    }
    for path in forms:
        requests[path] = functools.partial(site.call, "POST", path, forms[path], form=True, address="10.4.0.3")
    seen: Counter[tuple[str, int]] = Counter()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            for name, send in requests.items():
                seen[(name, send()[0])] += 1

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    site.set_store_up(False)
    try:
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(60)
        during = {name: send() for name, send in requests.items()}
    finally:
        site.set_store_up(True)

    # Only a regeneration whose own write the outage cut off keeps the guide's 500.
    assert not [key for key in seen if key[1] >= 500 and key[1] != 503 and key[0] != "regenerate"], seen
    assert seen[("locked sign-in", 200)] == 0 and not [k for k in seen if k[0] in forms and k[1] == 302], seen
    assert {name: answer[0] for name, answer in during.items()} == dict.fromkeys(requests, 503)
    assert all(answer[1].get("Retry-After") == "5" for answer in during.values())
    api = [answer for name, answer in during.items() if name not in forms and name != "join page"]
    assert all(json.loads(body)["detail"].startswith("The service is temporarily unavailable") for _, _, body in api)
