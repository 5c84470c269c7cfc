"""Writes cut off by an outage: every operation is one transaction, so nothing is ever half done.

Whether the transaction never reached DynamoDB or was applied and its answer
lost, the table is consistent the moment the outage begins: no repair, no
waiting, and the audit with no grace period finds nothing.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from typing import Any

import botocore.exceptions
import pytest
import urllib3

from benchmarks.load_test import start_forwarder
from devtools.embedded_dynamodb import free_port
from invites import assignment
from invites import services as engine
from invites.audit import Kind, audit_invite_codes
from invites.services import space_create
from spaces import dynamodb
from spaces.exceptions import DynamoUnavailable
from spaces.models import Space
from spaces.selectors import space_get
from tests.invariants import invariant_violations, mapped_codes, scan_all, stored_code
from tests.legacy import put_legacy_space


class Outage:
    """From a chosen call on, every request of the shared client fails to connect, until ``end()``.

    With ``answer_lost`` the chosen call reaches DynamoDB first: the write
    happens, its answer never comes back.
    """

    def __init__(self) -> None:
        self.down = False
        self.begin_at: tuple[str, int] | None = None
        self.answer_lost = False
        self.refused = 0
        self.http = urllib3.PoolManager()

    def begins_at(self, operation: str, *, skip: int = 0, answer_lost: bool = False) -> None:
        self.begin_at, self.answer_lost = (operation, skip), answer_lost

    def end(self) -> None:
        self.down = False

    def __call__(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else target).rsplit(".", 1)[-1]
        if not self.down and self.begin_at is not None and self.begin_at[0] == operation:
            name, skip = self.begin_at
            if skip:
                self.begin_at = (name, skip - 1)
                return
            self.down, self.begin_at = True, None
            if self.answer_lost:
                self.http.request(request.method, request.url, body=request.body, headers=dict(request.headers))
        if self.down:
            self.refused += 1
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture
def outage(dynamo_table: Any, connect_with: Any, client_events: Any) -> Outage:
    # One attempt per call: the outage is the test's, not botocore's retries'.
    connect_with(DYNAMODB_MAX_ATTEMPTS=1)
    cut = Outage()
    client_events.register("before-send.dynamodb", cut)
    return cut


def assert_nothing_left_behind() -> None:
    """Checked the moment DynamoDB answers again: the engine has nothing running in the background."""
    assert invariant_violations() == []
    report = audit_invite_codes(repair=False, grace_seconds=0)
    assert report.clean, report.counts()


@pytest.mark.parametrize("answer_lost", [False, True], ids=["never-arrived", "applied-answer-lost"])
def test_a_regeneration_cut_off_ends_with_one_code_and_its_mapping(outage: Outage, answer_lost: bool) -> None:
    space = space_create(owner_id="o", name="Cut off")
    outage.begins_at("TransactWriteItems", answer_lost=answer_lost)

    with pytest.raises(DynamoUnavailable):
        engine.invite_code_regenerate(space_id=space.id)
    outage.end()

    code = stored_code(space.id)
    assert (code != space.invite_code) is answer_lost
    assert mapped_codes(space.id) == {code}
    assert_nothing_left_behind()


@pytest.mark.parametrize("answer_lost", [False, True], ids=["never-arrived", "applied-answer-lost"])
def test_a_backfill_assignment_cut_off_ends_consistent(outage: Outage, answer_lost: bool) -> None:
    space = Space.get(*Space.key(put_legacy_space(name="No code yet")), consistent_read=True)
    outage.begins_at("TransactWriteItems", answer_lost=answer_lost)

    with pytest.raises(DynamoUnavailable):
        assignment.invite_code_assign_if_missing(spaces=[space])
    outage.end()

    code = stored_code(space.id)
    assert (code is not None) is answer_lost
    assert mapped_codes(space.id) == ({code} if code else set())
    assert invariant_violations() == []
    report = audit_invite_codes(repair=False, grace_seconds=0)
    # The only thing the audit may see is the space still waiting for its code.
    waiting = [finding.space_id for finding in report.of(Kind.SPACES_WITHOUT_CODE)]
    assert waiting == ([] if answer_lost else [space.id])
    assert len(report.problems) == len(waiting)


@pytest.mark.parametrize("answer_lost", [False, True], ids=["never-arrived", "applied-answer-lost"])
def test_a_space_creation_cut_off_is_all_there_or_not_at_all(outage: Outage, answer_lost: bool) -> None:
    outage.begins_at("TransactWriteItems", answer_lost=answer_lost)

    with pytest.raises(DynamoUnavailable):
        space_create(owner_id="o", name="Cut off at birth")
    outage.end()

    spaces = [item for item in scan_all() if item["SK"] == "METADATA"]
    assert len(spaces) == (1 if answer_lost else 0)
    assert len([item for item in scan_all() if item["PK"].startswith("INVITE#")]) == len(spaces)
    assert_nothing_left_behind()


def test_regenerations_through_a_real_outage_leave_a_consistent_table(
    dynamo_table: Any, moto_server: Any, connect_with: Any
) -> None:
    """Threads regenerate through a TCP forwarder that is killed and restarted, as in the failure benchmark."""
    port = free_port()
    forwarder = start_forwarder(port, moto_server.port)
    direct = dynamodb.botocore_client()  # straight to the server: checks while the forwarder is down
    connect_with(
        DYNAMODB_HOST=f"http://127.0.0.1:{port}",
        DYNAMODB_MAX_ATTEMPTS=1,
        DYNAMODB_CONNECT_TIMEOUT=0.5,
        DYNAMODB_READ_TIMEOUT=2.0,
    )
    try:
        space_ids = [space_create(owner_id="o", name=f"Busy {n}").id for n in range(4)]
        outcomes: Counter[str] = Counter()
        stop = threading.Event()

        def regenerate_until_stopped(seed: int) -> None:
            chooser = random.Random(seed)
            while not stop.is_set():
                try:
                    engine.invite_code_regenerate(space_id=chooser.choice(space_ids))
                    outcomes["changed"] += 1
                except DynamoUnavailable:
                    outcomes["unavailable"] += 1
                    time.sleep(0.02)
                except Exception as exc:  # counted, so the test fails on anything else
                    outcomes[f"unexpected {type(exc).__name__}: {exc} ({exc.__cause__!r})"] += 1

        workers = [threading.Thread(target=regenerate_until_stopped, args=(n,)) for n in range(6)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)
        forwarder.kill()
        forwarder.wait()
        time.sleep(0.3)
        # While it is down, with the writers still trying: the table is exact.
        assert invariant_violations(client=direct) == []
        time.sleep(0.7)
        forwarder = start_forwarder(port, moto_server.port)
        time.sleep(1.0)
        stop.set()
        for worker in workers:
            worker.join(30)

        assert not any(worker.is_alive() for worker in workers)
        assert set(outcomes) == {"changed", "unavailable"}, outcomes
        assert_nothing_left_behind()
    finally:
        forwarder.kill()
        forwarder.wait()


HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


class CutAnswers:
    """An endpoint in front of the server that forwards each request, then cuts its first ``cuts`` answers off
    halfway through the body (status line and headers intact), as a connection that drops mid-answer does."""

    def __init__(self, target: str, cuts: int) -> None:
        self.target, self.cuts, self.http = target, cuts, urllib3.PoolManager()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            client, _ = self.listener.accept()
            with client, client.makefile("rb") as request:
                head = [line for line in iter(request.readline, b"\r\n")]
                headers = dict(line.decode().rstrip("\r\n").split(": ", 1) for line in head[1:])
                body = request.read(int(headers.get("Content-Length", 0)))
                answer = self.http.request("POST", self.target, body=body, headers=headers)
                kept = answer.data[: len(answer.data) // 2] if self.cuts > 0 else answer.data
                self.cuts -= 1
                kept_headers = [f"{k}: {v}" for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
                lines = [f"HTTP/1.1 {answer.status} OK", *kept_headers, f"Content-Length: {len(answer.data)}"]
                client.sendall("\r\n".join([*lines, "Connection: close", "", ""]).encode() + kept)


@pytest.mark.parametrize("attempts", [1, 3])
def test_an_answer_cut_off_mid_body_is_an_outage_not_an_empty_answer(
    dynamo_table: Any, moto_server: Any, connect_with: Any, attempts: int
) -> None:
    """botocore reads a cut body as {}: without the check, the space would be "not found" and the audit's scan done."""
    space = space_create(owner_id="o", name="Whole")
    cutter = CutAnswers(moto_server.endpoint_url, cuts=attempts)
    connect_with(DYNAMODB_HOST=cutter.url, DYNAMODB_MAX_ATTEMPTS=attempts)

    with pytest.raises(DynamoUnavailable, match="Connection was closed"):
        space_get(space_id=space.id)
    cutter.cuts = attempts
    with pytest.raises(DynamoUnavailable):
        audit_invite_codes(repair=False, grace_seconds=0)
    cutter.cuts = attempts - 1  # the last attempt's answer arrives whole

    assert space_get(space_id=space.id).invite_code == space.invite_code
    assert audit_invite_codes(repair=False, grace_seconds=0).total_spaces == 1
