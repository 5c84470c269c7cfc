"""kill -9 of a web worker in the middle of requests: the table is exact at that instant.

Real processes against the embedded DynamoDB: gunicorn with production
settings and two workers, clients regenerating, joining and creating over
HTTP from threads, and one worker killed with SIGKILL while requests are on
their way. The whole table is checked right after the kill, before anything
else runs: every operation is one transaction, so there is nothing to clean up.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter

import pytest

from invites.audit import audit_invite_codes
from invites.services import space_create
from tests.api_support import add_member
from tests.invariants import invariant_violations, scan_all

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def signed_access_token(user_id: str, signing_key: str) -> str:
    from rest_framework_simplejwt.backends import TokenBackend
    from rest_framework_simplejwt.tokens import AccessToken

    return TokenBackend("HS256", signing_key=signing_key).encode({**AccessToken().payload, "user_id": user_id})


def request(server, method: str, path: str, token: str, body: dict | None = None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0  # the worker died under this request
    finally:
        connection.close()


def wait_for(condition, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_killing_a_worker_mid_request_leaves_the_table_exact(server) -> None:
    key = server.env["DJANGO_SECRET_KEY"]
    owner = str(uuid.uuid4())
    spaces = [space_create(owner_id=owner, name=f"Busy {n}") for n in range(3)]
    admin = str(uuid.uuid4())
    for space in spaces:
        add_member(space.id, admin, "admin")
    owner_token, admin_token = signed_access_token(owner, key), signed_access_token(admin, key)
    outcomes: Counter[int] = Counter()
    stop = threading.Event()

    def regenerate(index: int) -> None:
        token = owner_token if index % 2 else admin_token
        while not stop.is_set():
            outcomes[request(server, "POST", f"/api/spaces/{spaces[index % 3].id}/invite", token)] += 1

    def join_and_create(index: int) -> None:
        while not stop.is_set():
            newcomer = signed_access_token(str(uuid.uuid4()), key)
            code = next(i["invite_code"] for i in scan_all() if i.get("id") == spaces[index % 3].id)
            outcomes[request(server, "POST", "/api/spaces/join", newcomer, {"invite_code": code})] += 1
            outcomes[request(server, "POST", "/api/spaces", newcomer, {"name": "Made under fire"})] += 1

    threads = [threading.Thread(target=regenerate, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=join_and_create, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: outcomes[200] >= 5, seconds=60)  # requests are on their way to both workers
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        # Right after the kill, while the others keep going: the table is exact now.
        assert invariant_violations(require_codes=True) == []
        # A loaded machine serves slowly: go on until enough happened after the kill too.
        wait_for(lambda: outcomes[200] > 10 and outcomes[201] > 0, seconds=60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    assert outcomes[200] > 10 and outcomes[201] > 0, outcomes
    assert invariant_violations(require_codes=True) == []
    report = audit_invite_codes(repair=False, grace_seconds=0)
    assert report.clean, report.counts()
    counts = {i["id"]: int(i.get("member_count", 0)) for i in scan_all() if i.get("SK") == "METADATA"}
    members = Counter(i["PK"][len("SPACE#") :] for i in scan_all() if i["SK"].startswith("MEMBER#"))
    assert counts == {space_id: members[space_id] for space_id in counts}
