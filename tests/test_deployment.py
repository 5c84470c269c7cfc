"""Production settings and the real gunicorn server: deploy checks, config, throttles across workers."""

from __future__ import annotations

import http.client
import io
import itertools
import json
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import gunicorn_process

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
        "print(json.dumps({'workers': c['workers'], 'connections': c['worker_connections'],"
        " 'worker_class': c['worker_class'],"
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


def test_gunicorn_gives_each_connection_a_greenlet_and_a_dynamodb_connection() -> None:
    config = gunicorn_config(GUNICORN_WORKERS="3", GUNICORN_WORKER_CONNECTIONS="60")

    assert config["worker_class"] == "gevent"
    assert (config["workers"], config["connections"], config["pool"]) == (3, 60, "60")
    assert config["accesslog"] is None  # our middleware logs requests, without raw paths
    assert config["metrics_dir"] is True


def test_an_explicit_pool_size_is_left_alone() -> None:
    config = gunicorn_config(GUNICORN_WORKER_CONNECTIONS="60", DYNAMODB_MAX_POOL_CONNECTIONS="12")

    assert config["pool"] == "12"


# --- the real server ---------------------------------------------------------------------


def answered_by(response: http.client.HTTPResponse) -> int:
    return int(response.headers["X-Worker-PID"])


def new_connection(server: gunicorn_process.GunicornServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def signed_access_token(user_id: str, signing_key: str) -> str:
    """A token as the server would issue it (the server runs with its own secret key)."""
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken

    payload = {**AccessToken().payload, "user_id": user_id}
    return TokenBackend("HS256", signing_key=signing_key).encode(payload)


@dataclass
class Guesser:
    """One user guessing invite codes against the real join endpoint."""

    server: gunicorn_process.GunicornServer
    token: str

    def guess(self) -> tuple[int, int]:
        """(status, pid of the worker that answered)."""
        connection = new_connection(self.server)
        connection.request(
            "POST",
            "/api/spaces/join",
            body=json.dumps({"invite_code": "GUESS999"}),
            headers={
                "Connection": "close",
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        response = connection.getresponse()
        response.read()
        connection.close()
        return response.status, answered_by(response)


def guess_avoiding(guesser: Guesser, busy_pid: int) -> tuple[int, int]:
    """Guess while worker ``busy_pid`` is held busy, so the other worker must answer.

    A sync worker handles one request at a time and accepts nothing meanwhile;
    the kernel otherwise tends to hand every new connection to the same worker.
    """
    for _attempt in range(20):
        holder = new_connection(guesser.server)
        holder.request("GET", "/test-only/hold", headers={"Connection": "close"})
        held = holder.getresponse()  # headers arrive while the worker is still busy
        if answered_by(held) == busy_pid:
            answer = guesser.guess()
            held.read()
            holder.close()
            return answer
        held.read()  # the wrong worker: let it finish and try again
        holder.close()
    pytest.fail(f"could not hold worker {busy_pid} busy")


@pytest.fixture
def two_worker_server(tmp_path: Path, dynamo_table):
    env = gunicorn_process.production_environment(
        DJANGO_SETTINGS_MODULE="tests.ops_site.settings",
        DYNAMODB_HOST=dynamo_table.host,
        DYNAMODB_TABLE=dynamo_table.table_name,
        THROTTLE_INVITE_JOIN="5/hour",  # fixed windows: an hour's rarely turns mid-test
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        # Sync workers (one request at a time) let the test steer requests to each worker;
        # the throttle's counters are shared the same way whatever the worker class.
        GUNICORN_CMD_ARGS="--worker-class sync",
    )
    server = gunicorn_process.start(env=env, workers=2, threads=1)  # more threads would switch to gthread
    yield server
    server.stop()


def guesses_alternating_between_workers(server: gunicorn_process.GunicornServer, count: int) -> list[tuple[int, int]]:
    guesser = Guesser(server, signed_access_token(str(uuid.uuid4()), server.env["DJANGO_SECRET_KEY"]))
    answers = [guesser.guess()]
    while len(answers) < count:
        answers.append(guess_avoiding(guesser, busy_pid=answers[-1][1]))
    return answers


@pytest.mark.slow
def test_the_join_throttle_holds_across_gunicorn_workers(two_worker_server) -> None:
    time.sleep(max(0.0, time.time() % 3600 - 3540))  # fixed hourly windows: not across a boundary
    answers = guesses_alternating_between_workers(two_worker_server, count=12)

    workers = [pid for _, pid in answers]
    assert len(set(workers)) == 2
    assert all(one != next_one for one, next_one in itertools.pairwise(workers)), answers
    # Five wrong guesses (400 Invalid invite code), then refused whichever worker answers.
    assert [status for status, _ in answers] == [400] * 5 + [429] * 7


# --- the production server from outside --------------------------------------------------------


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory):
    """gunicorn as make serve runs it: debug off, HTTPS redirect on, one allowed host."""
    work_dir = tmp_path_factory.mktemp("production")
    env = gunicorn_process.production_environment(
        DJANGO_ALLOWED_HOSTS="spaces.example.com",
        DJANGO_SECURE_SSL_REDIRECT="1",
        PROMETHEUS_MULTIPROC_DIR=str(work_dir / "metrics"),
        DJANGO_STATIC_ROOT=str(work_dir / "static"),
    )
    # As make serve does: without the manifest, pages with static files fail.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True
    )
    server = gunicorn_process.start(env=env, workers=1, threads=2)
    yield server
    server.stop()


def fetch(server: gunicorn_process.GunicornServer, path: str, **headers: str) -> http.client.HTTPResponse:
    connection = new_connection(server)
    connection.request("GET", path, headers={"Host": "spaces.example.com", **headers})
    response = connection.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]  # kept for the assertions, after the close
    connection.close()
    return response


BEHIND_TLS = {"X-Forwarded-Proto": "https"}


@pytest.mark.slow
def test_plain_http_is_redirected_to_https(production_server) -> None:
    response = fetch(production_server, "/api/spaces")

    assert response.status == 301
    assert response.headers["Location"] == "https://spaces.example.com/api/spaces"


@pytest.mark.slow
def test_liveness_answers_plain_http_by_ip_on_the_production_server(production_server) -> None:
    response = fetch(production_server, "/healthz", Host=f"127.0.0.1:{production_server.port}")

    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}  # type: ignore[attr-defined]  # set by fetch


@pytest.mark.slow
def test_responses_behind_tls_carry_the_security_headers(production_server) -> None:
    response = fetch(production_server, "/api/spaces", **BEHIND_TLS)

    assert response.status == 401
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Request-ID"]


@pytest.mark.slow
def test_the_admin_sets_only_secure_cookies_and_cannot_be_framed(production_server) -> None:
    response = fetch(production_server, "/admin/login/", **BEHIND_TLS)

    cookies = response.headers.get_all("Set-Cookie") or []
    assert response.status == 200
    assert cookies and all("; Secure" in cookie for cookie in cookies)
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/no/such/page", BEHIND_TLS),
        ("/api/spaces", {"Host": "attacker.example.net", **BEHIND_TLS}),
        ("/metrics", BEHIND_TLS),
    ],
)
def test_errors_reveal_no_debug_pages_settings_or_metrics(production_server, path, headers) -> None:
    response = fetch(production_server, path, **headers)

    body = response.body.decode()  # type: ignore[attr-defined]  # set by fetch
    assert response.status in {400, 404}
    for revealing in ("Traceback", "DEBUG = True", "URLconf", "ALLOWED_HOSTS", "lifestyle_http_requests"):
        assert revealing not in body


# --- the IAM policy of docs/operations.md ------------------------------------------------------


def documented_iam_actions() -> set[str]:
    """The actions of the web app's and commands' policy (§2.2 of the operations guide)."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    section = guide.split("### 2.2", 1)[1]
    policy = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    [statement] = policy["Statement"]
    return {action.removeprefix("dynamodb:") for action in statement["Action"]}


TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class IamActions:
    """The IAM actions behind each call: a transaction needs those of the actions inside it."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, model, params, **_) -> None:
        if model.name == "TransactWriteItems":
            self.seen.update(TRANSACTION_ACTIONS[kind] for action in params["TransactItems"] for kind in action)
        else:
            self.seen.add(model.name)


def test_the_documented_iam_policy_lists_exactly_the_calls_the_product_makes(dynamo_table, client_events) -> None:
    from django.core.management import call_command

    from invites import joining
    from invites import services as engine
    from invites.audit import audit_invite_codes
    from invites.services import space_create
    from spaces.models import Space
    from spaces.selectors import space_member_count, spaces_of_user
    from spaces.services import space_membership_remove
    from tests.legacy import put_legacy_mapping, put_legacy_space

    actions = IamActions()
    client_events.register("before-parameter-build.dynamodb", actions)
    space = space_create(owner_id="owner", name="Every call")
    change = engine.invite_code_regenerate(space_id=space.id, actor_id="owner")
    joining.space_join_with_code(typed_code=str(change.new_code), user_id="joiner")
    spaces_of_user(user_id="joiner", limit=10)
    legacy_id = put_legacy_space(name="Counted by a Query")  # a PutItem, as the product's own
    space_member_count(space=Space.get(*Space.key(legacy_id)))  # GetItem (test's), then a Query
    put_legacy_space(name="Needs a code")  # a PutItem, as the product's own
    call_command("backfill_invite_codes", stdout=io.StringIO(), stderr=io.StringIO())
    put_legacy_mapping(code="DEAD2345", space_id=space.id)  # the audit removes it, checking the space
    audit_invite_codes(repair=True, grace_seconds=0)
    space_membership_remove(space_id=space.id, user_id="joiner")
    client_events.unregister("before-parameter-build.dynamodb", actions)

    assert actions.seen == documented_iam_actions()


# --- request bodies the server refuses before reading them ------------------------------------------------


def raw_exchange(server: gunicorn_process.GunicornServer, head: bytes, first_body_bytes: bytes) -> bytes:
    """Send a request head and the start of a body that never ends; what the server answers meanwhile."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + first_body_bytes)
        answer = b""
        sock.settimeout(2)
        while b"detail" not in answer:  # the head, then the JSON body with its detail
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_chunked_body_is_refused_with_411_without_being_read(production_server) -> None:
    head = (
        b"POST /api/auth/token/ HTTP/1.1\r\nHost: spaces.example.com\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    # Only the head: the server answers while the body is still to come (sending part of
    # it would make the server's close reset the connection and could lose the answer).
    answer = raw_exchange(production_server, head, b"")

    assert answer.startswith(b"HTTP/1.1 411"), answer[:200]


def test_a_large_announced_body_is_refused_with_413_without_being_read(production_server) -> None:
    head = (
        b"POST /api/auth/token/ HTTP/1.1\r\nHost: spaces.example.com\r\nX-Forwarded-Proto: https\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    )

    answer = raw_exchange(production_server, head, b"")  # 20 MB announced, none of it sent

    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than" in answer
