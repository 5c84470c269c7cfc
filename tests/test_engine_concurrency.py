"""The engine under contention: real threads against the moto server, whole-table checks after."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from invites import assignment, codes, joining
from invites import services as engine
from invites.services import space_create
from spaces.exceptions import InvalidInviteCode
from spaces.models import Space
from tests.invariants import invariant_violations, scan_all
from tests.legacy import put_legacy_space

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def jittered_round_trips(client_events: Any) -> None:
    """Random 0-4 ms before every DynamoDB call, so threads interleave between steps
    the way network latency makes them interleave against real DynamoDB."""

    def jitter(**_: object) -> None:
        time.sleep(random.random() * 0.004)

    client_events.register("before-send.dynamodb", jitter)


T = TypeVar("T")


def run_together(count: int, task: Callable[[int], T]) -> list[T]:
    """Start ``count`` threads that call ``task`` at the same moment."""
    barrier = threading.Barrier(count)

    def synchronized(index: int) -> T:
        barrier.wait()
        return task(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(synchronized, range(count)))


def working_codes(space_id: str, candidates: set[str]) -> set[str]:
    alive = set()
    for code in candidates:
        try:
            space, _ = joining.invite_code_resolve(typed_code=code)
        except InvalidInviteCode:
            continue
        assert space.id == space_id
        alive.add(code)
    return alive


@pytest.mark.parametrize("round_number", range(10))
def test_twenty_concurrent_regenerations_leave_exactly_one_working_code(
    dynamo_table: object, round_number: int
) -> None:
    space = space_create(owner_id="owner", name=f"Contended {round_number}")

    def regenerate_soon(index: int) -> engine.SpaceOutcome:
        # Staggered starts: some threads read the code only after others switched it.
        time.sleep(random.Random(index).random() * 0.05)
        return engine.invite_code_regenerate(space_id=space.id)

    changes = run_together(20, regenerate_soon)

    stored = Space.get(*Space.key(space.id), consistent_read=True).invite_code
    every_code_seen = {space.invite_code} | {c.new_code for c in changes if c.new_code}
    assert working_codes(space.id, every_code_seen) == {stored}
    assert any(change.applied for change in changes)
    mappings = [i for i in scan_all() if i["PK"].startswith("INVITE#")]
    assert [m["PK"] for m in mappings] == [f"INVITE#{stored}"]
    assert invariant_violations(require_codes=True) == []


def test_concurrent_regenerations_of_a_space_without_a_code(dynamo_table: object) -> None:
    space_id = put_legacy_space(name="No code yet")

    run_together(10, lambda _: engine.invite_code_regenerate(space_id=space_id))

    assert invariant_violations(require_codes=True) == []


def test_two_workers_assigning_missing_codes_to_the_same_spaces(dynamo_table: object) -> None:
    space_ids = [put_legacy_space(name=f"Legacy {n}") for n in range(30)]

    def worker(index: int) -> list[engine.SpaceOutcome]:
        order = list(space_ids)
        random.Random(index).shuffle(order)
        spaces = [Space.get(*Space.key(space_id)) for space_id in order]
        return assignment.invite_code_assign_if_missing(spaces=spaces)

    results = run_together(2, worker)

    applied = [change.space_id for changes in results for change in changes if change.applied]
    assert sorted(applied) == sorted(space_ids)  # each space got exactly one code, from one worker
    assert invariant_violations(require_codes=True) == []


def test_assign_if_missing_beside_regenerations_never_gives_two_working_codes(dynamo_table: object) -> None:
    space_ids = [put_legacy_space(name=f"Mixed {n}") for n in range(10)]
    spaces = [Space.get(*Space.key(space_id)) for space_id in space_ids]

    def task(index: int) -> object:
        if index == 0:
            return assignment.invite_code_assign_if_missing(spaces=spaces)
        return [engine.invite_code_regenerate(space_id=space_id) for space_id in space_ids[index % 3 :: 3]]

    run_together(4, task)

    assert invariant_violations(require_codes=True) == []


def test_concurrent_creates_forced_onto_colliding_codes_get_unique_codes(
    dynamo_table: object, monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    pool = [codes.generate_code() for _ in range(14)]
    draws = random.Random(7)
    lock = threading.Lock()

    def colliding_generator() -> str:
        with lock:
            return draws.choice(pool)

    monkeypatch.setattr(codes, "generate_code", colliding_generator)
    settings.INVITE_CODE_MAX_ATTEMPTS = 200

    created = run_together(12, lambda n: space_create(owner_id=f"owner-{n}", name=f"Space {n}"))

    held = [space.invite_code for space in created]
    assert len(set(held)) == len(held) == 12
    assert set(held) <= set(pool)
    assert invariant_violations(require_codes=True) == []


def stall_thread_at(
    events: Any, event_name: str, thread_name: str, arrived: threading.Event, until: threading.Event
) -> Any:
    """A botocore hook that holds one named thread at ``event_name`` until ``until`` is set."""

    def hold(**_: object) -> None:
        if threading.current_thread().name == thread_name:
            arrived.set()
            until.wait(timeout=10)

    events.register(event_name, hold)
    return hold


def test_a_regeneration_stalled_after_its_transaction_leaves_one_code(dynamo_table: object, client_events) -> None:
    space = space_create(owner_id="owner", name="Stalled after its transaction")
    arrived, resume = threading.Event(), threading.Event()
    event = "after-call.dynamodb.TransactWriteItems"
    hook = stall_thread_at(client_events, event, "stalled", arrived, resume)
    stalled = threading.Thread(
        target=lambda: engine.invite_code_regenerate(space_id=space.id), name="stalled", daemon=True
    )
    try:
        stalled.start()
        assert arrived.wait(timeout=10)
        # Applied, its answer not yet read: the table is already consistent.
        assert invariant_violations(require_codes=True) == []
        later = engine.invite_code_regenerate(space_id=space.id)
    finally:
        resume.set()
        stalled.join(timeout=10)
        client_events.unregister(event, hook)

    assert working_codes(space.id, {later.new_code or "", later.old_code or ""} - {""}) == {later.new_code}
    assert invariant_violations(require_codes=True) == []


def test_a_regeneration_stalled_before_its_transaction_loses_cleanly(dynamo_table: object, client_events) -> None:
    space = space_create(owner_id="owner", name="Stalled before its transaction")
    arrived, resume = threading.Event(), threading.Event()
    event = "before-call.dynamodb.TransactWriteItems"
    hook = stall_thread_at(client_events, event, "stalled", arrived, resume)
    results: list[engine.SpaceOutcome] = []
    stalled = threading.Thread(
        target=lambda: results.append(engine.invite_code_regenerate(space_id=space.id)), name="stalled", daemon=True
    )
    try:
        stalled.start()
        assert arrived.wait(timeout=10)  # it read the space and drew its code, and wrote nothing yet
        assert invariant_violations(require_codes=True) == []
        winner = engine.invite_code_regenerate(space_id=space.id)
    finally:
        resume.set()
        stalled.join(timeout=10)
        client_events.unregister(event, hook)

    (loser,) = results
    assert loser.applied is False
    assert loser.new_code == winner.new_code
    assert working_codes(space.id, {space.invite_code, winner.new_code or ""}) == {winner.new_code}
    assert invariant_violations(require_codes=True) == []
