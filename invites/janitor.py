"""Removes ``INVITE#`` mappings of codes their space no longer holds, after the fact.

Every mapping removal of the engine goes through here. Removing a dead code's
mapping late is always safe: a space never holds a code again once it has
moved away from it (claims are permanent), so deleting that code's mapping
can never remove a live one. That lets the engine

* keep the old code's delete off the request path: a regeneration answers
  after its switch, and the old mapping goes a few milliseconds later;
* finish what a write cut off by an outage left behind: the mappings of a
  regeneration whose outcome is unknown are checked against the space (a
  strongly consistent read) and the dead ones removed once DynamoDB answers
  again, retried with backoff for ``INVITE_MAPPING_CLEANUP_GIVE_UP_SECONDS``.
  That read waits ``INVITE_MAPPING_CLEANUP_SETTLE_SECONDS`` first: DynamoDB
  may still apply a switch whose answer the client stopped waiting for, and
  a read made before it lands would delete the mapping of the code it sets.

The queue lives in the process. A process killed before it drains leaves
dead mappings, which let nobody in (joins check the space's own code) and
which ``audit_invite_codes --repair`` removes; on a normal exit the process
waits up to ``INVITE_MAPPING_CLEANUP_EXIT_WAIT_SECONDS`` for the queue.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.conf import settings

from operations import metrics
from spaces.dynamodb import current_binding, get_many, short_reason, write_batch
from spaces.models import InviteMapping, Space

logger = logging.getLogger("invites")

BATCH = 25  # BatchWriteItem's limit; BatchGetItem takes 100
MAX_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class _Removal:
    space_id: str
    codes: tuple[str, ...]
    # False when the caller knows the codes are dead (its own switch moved the
    # space away from them, or never happened for a code it alone claimed).
    check_space: bool
    table: tuple[str, str | None]  # (name, endpoint) it was queued for
    queued_at: float
    attempts: int = 0
    not_before: float = 0.0


class MappingJanitor:
    """A queue of mapping removals and the one daemon thread that works it off."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._queued: list[_Removal] = []
        self._in_hand = 0
        self._paused = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # --- what the engine calls -------------------------------------------------------

    def remove_dead(self, space_id: str, codes: Iterable[str | None]) -> None:
        """Delete the mappings of codes the space is known never to hold again."""
        self._add(space_id, codes, check_space=False, settle=False)

    def remove_unless_held(self, space_id: str, codes: Iterable[str | None], *, settle: bool = True) -> None:
        """Delete the mappings of those codes the space does not hold when read.

        The read waits for the settle time unless the caller knows no write of
        its own is still on its way (``settle=False``: the audit's re-check).
        """
        self._add(space_id, codes, check_space=True, settle=settle)

    def flush(self, timeout: float) -> bool:
        """Wait until every removal queued so far is done or abandoned; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queued or self._in_hand:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(min(left, 0.1))
        return True

    def pending(self) -> int:
        with self._condition:
            return len(self._queued) + self._in_hand

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold removals back (tests use it to see the request path alone)."""
        with self._condition:
            self._paused += 1
        try:
            yield
        finally:
            with self._condition:
                self._paused -= 1
                self._condition.notify_all()

    # --- the worker ----------------------------------------------------------------------

    def _add(self, space_id: str, codes: Iterable[str | None], *, check_space: bool, settle: bool) -> None:
        wanted = tuple(dict.fromkeys(code for code in codes if code))
        if not wanted:
            return
        now = time.monotonic()
        wait = settings.INVITE_MAPPING_CLEANUP_SETTLE_SECONDS if settle else 0.0
        removal = _Removal(space_id, wanted, check_space, _table_now(), now, not_before=now + wait)
        with self._condition:
            self._start_if_needed()
            self._queued.append(removal)
            self._condition.notify_all()

    def _start_if_needed(self) -> None:
        if self._pid != os.getpid():
            # A forked child inherits the queue but not the thread.
            self._pid, self._thread, self._queued, self._in_hand = os.getpid(), None, [], 0
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="invite-mapping-janitor", daemon=True)
            self._thread.start()

    def _take_due(self) -> list[_Removal]:
        with self._condition:
            while True:
                now = time.monotonic()
                due: list[_Removal] = []
                if not self._paused:
                    waiting: list[_Removal] = []
                    for removal in self._queued:
                        (due if removal.not_before <= now and len(due) < BATCH else waiting).append(removal)
                    self._queued = waiting
                if due:
                    self._in_hand = len(due)
                    return due
                waits = [r.not_before - now for r in self._queued if r.not_before > now]
                self._condition.wait(min(waits) if waits and not self._paused else None)

    def _run(self) -> None:
        while True:
            due = self._take_due()
            try:
                self._work_off(due)
            except Exception as exc:  # retried below; the thread must not die
                self._retry_or_abandon(due, exc)
            finally:
                with self._condition:
                    self._in_hand = 0
                    self._condition.notify_all()

    def _work_off(self, removals: list[_Removal]) -> None:
        table = _table_now()
        for removal in removals:
            if removal.table != table:
                # Only tests and benchmarks rebind the process to another table.
                logger.warning("Dropped an invite mapping removal queued for table %s", removal.table[0])
        removals = [r for r in removals if r.table == table]
        held = self._codes_held([r.space_id for r in removals if r.check_space])
        # One key at most once: BatchWriteItem refuses a batch with duplicate keys,
        # and two removals may name the same mapping (a failed write and a race).
        dead_keys = dict.fromkeys(
            InviteMapping.key(code, r.space_id)
            for r in removals
            for code in r.codes
            if not (r.check_space and held.get(r.space_id) == code)
        )
        dead = [InviteMapping(pk, sk) for pk, sk in dead_keys]
        write_batch(deletes=dead)
        if dead:
            metrics.invite_mapping_removals.labels(outcome="removed").inc(len(dead))

    @staticmethod
    def _codes_held(space_ids: list[str]) -> dict[str, str | None]:
        if not space_ids:
            return {}
        found = get_many([Space.key(space_id) for space_id in space_ids])
        spaces = (Space.from_raw_data(raw) for raw in found.values())
        return {space.id: space.invite_code for space in spaces}

    def _retry_or_abandon(self, removals: list[_Removal], exc: Exception) -> None:
        give_up_after = settings.INVITE_MAPPING_CLEANUP_GIVE_UP_SECONDS
        now = time.monotonic()
        retry = []
        for removal in removals:
            if now - removal.queued_at >= give_up_after:
                metrics.invite_mapping_removals.labels(outcome="abandoned").inc(len(removal.codes))
                logger.error(
                    "Gave up removing the invite mappings %s of space %s (%s); "
                    "audit_invite_codes --repair removes them",
                    ", ".join(removal.codes),
                    removal.space_id,
                    short_reason(exc),
                )
                continue
            attempts = removal.attempts + 1
            backoff = min(MAX_BACKOFF_SECONDS, 0.1 * 2**attempts)
            retry.append(replace(removal, attempts=attempts, not_before=now + backoff))
        if retry:
            metrics.invite_mapping_removals.labels(outcome="retried").inc(len(retry))
            if any(r.attempts % 10 == 1 for r in retry):
                logger.warning("Removing %d invite mappings failed (%s); retrying", len(retry), short_reason(exc))
            with self._condition:
                self._queued.extend(retry)


def _table_now() -> tuple[str, str | None]:
    binding = current_binding()
    return binding.table_name, binding.host


janitor = MappingJanitor()


@atexit.register
def _drain_before_exit() -> None:
    if janitor.pending() and not janitor.flush(settings.INVITE_MAPPING_CLEANUP_EXIT_WAIT_SECONDS):
        logger.warning(
            "Exiting with %d invite mapping removals not done; audit_invite_codes --repair removes them",
            janitor.pending(),
        )
