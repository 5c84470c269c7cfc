"""The audit: find (and with ``repair``, fix) every invite-code inconsistency in the table.

Shared by ``manage.py audit_invite_codes`` and the admin. One strongly
consistent scan collects, compactly, every space's code, every ``INVITE#``
mapping and every ``CODE#`` claim (memory grows with the number of codes, a
few dozen bytes each); the problems are computed from that. Repairs go
through the engine and re-read what they fix with a consistent read first,
so an audit running beside live traffic never undoes a change made after
its scan.

Operations in flight are not problems. A mapping whose code's claim belongs
to the mapping's space is in flight when the claim or the mapping is younger
than ``grace_seconds`` (a create or regeneration writes them before the
space), or when the space changed less than ``grace_seconds`` ago (the
engine's janitor deletes the old code's mapping just after the switch).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from invites import services as engine
from invites.janitor import janitor
from spaces import keys
from spaces.dynamodb import get_many, short_reason, table_connection, translate_unreachable, write_batch
from spaces.exceptions import DomainError, DynamoUnavailable
from spaces.models import InviteMapping, Space, utc_now_iso

DEFAULT_GRACE_SECONDS = 60.0
# How long a repair waits for the mapping deletes its regenerations queued.
REPAIR_DRAIN_SECONDS = 30.0
SCANNED_ATTRIBUTES = ("PK", "SK", "id", "invite_code", "space_id", "code", "created_at", "updated_at")
BATCH = 25


@dataclass
class AuditReport:
    total_items: int = 0
    total_spaces: int = 0
    spaces_without_code: list[str] = field(default_factory=list)  # space ids
    codes_without_mapping: list[tuple[str, str]] = field(default_factory=list)  # (space_id, code)
    mappings_with_missing_space: list[tuple[str, str]] = field(default_factory=list)  # (code, space_id)
    # (code, space_id, the code the space holds now or None)
    stale_mappings: list[tuple[str, str, str | None]] = field(default_factory=list)
    duplicate_codes: list[tuple[str, list[str]]] = field(default_factory=list)  # (code, space ids)
    missing_claims: list[tuple[str, str]] = field(default_factory=list)  # (space_id, code)
    repaired: dict[str, int] = field(default_factory=dict)  # problem kind -> items fixed
    repair_failures: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, subject, error)
    marked_legacy_codes_recorded: bool = False
    seconds: float = 0.0

    KINDS = (
        "spaces_without_code",
        "codes_without_mapping",
        "mappings_with_missing_space",
        "stale_mappings",
        "duplicate_codes",
        "missing_claims",
    )

    @property
    def problem_count(self) -> int:
        return sum(len(getattr(self, kind)) for kind in self.KINDS)

    @property
    def clean(self) -> bool:
        return self.problem_count == 0

    def counts(self) -> dict[str, int]:
        return {kind: len(getattr(self, kind)) for kind in self.KINDS}


@dataclass
class _Claim:
    space_id: str
    created_at: str | None


@dataclass
class _Snapshot:
    """What the scan saw, kept small: strings only, no model objects."""

    spaces: dict[str, str | None] = field(default_factory=dict)  # space id -> code
    mappings: list[tuple[str, str, str | None]] = field(default_factory=list)  # (code, space_id, created_at)
    claims: dict[str, _Claim] = field(default_factory=dict)  # CODE (upper) -> claim
    # Spaces whose code (or anything else) changed within the grace period.
    recently_updated: set[str] = field(default_factory=set)
    items: int = 0


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return value.get("S") if value else None


def _scan_items() -> Iterator[dict[str, Any]]:
    connection = table_connection()
    start_key = None
    while True:
        with translate_unreachable():
            page = connection.scan(
                attributes_to_get=list(SCANNED_ATTRIBUTES), consistent_read=True, exclusive_start_key=start_key
            )
        yield from page.get("Items", [])
        start_key = page.get("LastEvaluatedKey")
        if start_key is None:
            return


def _take_snapshot(grace_seconds: float) -> _Snapshot:
    snapshot = _Snapshot()
    now = datetime.now(UTC)
    for raw in _scan_items():
        snapshot.items += 1
        pk, sk = raw["PK"]["S"], raw["SK"]["S"]
        if pk.startswith(keys.SPACE_PREFIX) and sk == keys.SPACE_METADATA_SK:
            space_id = _text(raw, "id") or keys.strip_prefix(pk, keys.SPACE_PREFIX)
            snapshot.spaces[space_id] = _text(raw, "invite_code") or None
            if _age_seconds(_text(raw, "updated_at"), now) < grace_seconds:
                snapshot.recently_updated.add(space_id)
        elif pk.startswith(keys.INVITE_PREFIX) and sk.startswith(keys.SPACE_PREFIX):
            snapshot.mappings.append(
                (
                    keys.strip_prefix(pk, keys.INVITE_PREFIX),
                    keys.strip_prefix(sk, keys.SPACE_PREFIX),
                    _text(raw, "created_at"),
                )
            )
        elif pk.startswith(keys.CODE_PREFIX) and sk == keys.CODE_CLAIM_SK:
            snapshot.claims[keys.strip_prefix(pk, keys.CODE_PREFIX)] = _Claim(
                _text(raw, "space_id") or "", _text(raw, "created_at")
            )
    return snapshot


def _age_seconds(timestamp: str | None, now: datetime) -> float:
    if not timestamp:
        return float("inf")
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (now - moment).total_seconds()


def _find_problems(snapshot: _Snapshot, report: AuditReport, grace_seconds: float) -> None:
    now = datetime.now(UTC)
    mapped = {(code, space_id) for code, space_id, _ in snapshot.mappings}
    holders: dict[str, list[str]] = defaultdict(list)
    for space_id, code in snapshot.spaces.items():
        if not code:
            report.spaces_without_code.append(space_id)
            continue
        holders[code.upper()].append(space_id)
        claim = snapshot.claims.get(code.upper())
        if claim is None:
            report.missing_claims.append((space_id, code))
        if (code, space_id) not in mapped:
            report.codes_without_mapping.append((space_id, code))
    for code_upper, space_ids in holders.items():
        claim = snapshot.claims.get(code_upper)
        if len(space_ids) > 1:
            report.duplicate_codes.append((snapshot.spaces[space_ids[0]] or code_upper, sorted(space_ids)))
        elif claim is not None and claim.space_id != space_ids[0]:
            # The only holder is not the claimant: the claim belongs to another
            # (possibly deleted) space, so this space's code is not unique by
            # construction. Regenerating it is the fix.
            report.duplicate_codes.append((snapshot.spaces[space_ids[0]] or code_upper, [space_ids[0]]))
    for code, space_id, created_at in snapshot.mappings:
        claim = snapshot.claims.get(code.upper())
        in_flight = (
            grace_seconds > 0
            and claim is not None
            and claim.space_id == space_id
            and (
                min(_age_seconds(claim.created_at, now), _age_seconds(created_at, now)) < grace_seconds
                or space_id in snapshot.recently_updated
            )
        )
        if space_id not in snapshot.spaces:
            if not in_flight:
                report.mappings_with_missing_space.append((code, space_id))
        elif snapshot.spaces[space_id] != code and not in_flight:
            report.stale_mappings.append((code, space_id, snapshot.spaces[space_id]))


def audit_invite_codes(*, repair: bool, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> AuditReport:
    """Report every invite-code inconsistency; with ``repair``, fix each one.

    Raises :class:`DynamoUnavailable` when the table cannot be reached.
    """
    started = time.monotonic()
    report = AuditReport()
    snapshot = _take_snapshot(grace_seconds)
    report.total_items = snapshot.items
    report.total_spaces = len(snapshot.spaces)
    _find_problems(snapshot, report, grace_seconds)
    if repair:
        _Repair(report).run()
        # Regenerations of duplicates hand old mappings to the janitor: finish them too.
        if not janitor.flush(timeout=REPAIR_DRAIN_SECONDS):
            report.repair_failures.append(
                (
                    "stale_mappings",
                    f"{janitor.pending()} queued mapping deletes",
                    f"not done within {REPAIR_DRAIN_SECONDS:g} s; they are retried, run the audit again later",
                )
            )
        if not report.repair_failures and not engine.legacy_codes_recorded():
            # Every code a space holds now has a claim (recorded just above).
            engine.mark_legacy_codes_recorded(by="audit")
            report.marked_legacy_codes_recorded = True
    report.seconds = time.monotonic() - started
    return report


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, DomainError) else short_reason(exc)


class _Repair:
    """Each fix re-reads its subject (strongly consistent) and acts only if still needed."""

    SOURCE = "audit"

    def __init__(self, report: AuditReport) -> None:
        self.report = report

    def _fixed(self, kind: str, count: int = 1) -> None:
        self.report.repaired[kind] = self.report.repaired.get(kind, 0) + count

    def _failed(self, kind: str, subject: str, exc: BaseException) -> None:
        if isinstance(exc, DynamoUnavailable):
            raise exc
        self.report.repair_failures.append((kind, subject, _describe(exc)))

    def _current_spaces(self, space_ids: list[str]) -> dict[str, Space]:
        with translate_unreachable():
            found = get_many([Space.key(space_id) for space_id in space_ids])
        return {space.id: space for space in (Space.from_raw_data(raw) for raw in found.values())}

    def run(self) -> None:
        self._record_missing_claims()
        self._fix_duplicates()
        self._give_codes()
        self._write_missing_mappings()
        self._delete_dead_mappings()

    def _record_missing_claims(self) -> None:
        for space_id, code in self.report.missing_claims:
            try:
                space = self._current_spaces([space_id]).get(space_id)
                if space is None or space.invite_code != code:
                    continue  # changed since the scan: its new code was claimed by the engine
                holder = engine.invite_code_record_existing(space=space)
                if holder is None:
                    self._fixed("missing_claims")
                else:
                    # Another space claimed the same code first: a duplicate.
                    engine.invite_code_regenerate(space_id=space_id, space=space, source=self.SOURCE)
                    self._fixed("missing_claims")
            except Exception as exc:  # reported, the repair goes on
                self._failed("missing_claims", space_id, exc)

    def _fix_duplicates(self) -> None:
        from invites.services import _claimed_space_id  # the engine's own claim read

        for code, space_ids in self.report.duplicate_codes:
            try:
                with translate_unreachable():
                    claimant = _claimed_space_id(code)
                current = self._current_spaces(space_ids)
                for space_id in space_ids:
                    space = current.get(space_id)
                    if space is None or space.invite_code is None or space.invite_code.upper() != code.upper():
                        continue
                    if space_id == claimant:
                        continue  # the rightful holder keeps its code
                    engine.invite_code_regenerate(space_id=space_id, space=space, source=self.SOURCE)
                self._fixed("duplicate_codes")
            except Exception as exc:  # reported, the repair goes on
                self._failed("duplicate_codes", code, exc)

    def _give_codes(self) -> None:
        ids = self.report.spaces_without_code
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            try:
                spaces = list(self._current_spaces(chunk).values())
                changes = engine.invite_code_assign_if_missing(spaces=spaces, source=self.SOURCE)
                self._fixed("spaces_without_code", sum(1 for change in changes if change.applied))
            except Exception as exc:  # reported, the repair goes on
                self._failed("spaces_without_code", ",".join(chunk), exc)

    def _write_missing_mappings(self) -> None:
        from invites.services import _claimed_space_id

        wanted = self.report.codes_without_mapping
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            try:
                current = self._current_spaces([space_id for space_id, _ in chunk])
                puts = []
                for space_id, code in chunk:
                    space = current.get(space_id)
                    if space is None or space.invite_code != code:
                        continue
                    with translate_unreachable():
                        if _claimed_space_id(code) != space_id:
                            continue  # a duplicate, regenerated above, or a claim we could not write
                    puts.append(InviteMapping.build(code, space_id, utc_now_iso()))
                with translate_unreachable():
                    write_batch(puts=puts)
                for mapping in puts:
                    # A regeneration may have moved the space on since the read
                    # above (and deleted this mapping before our put): the janitor
                    # re-reads the space and removes the mapping if so.
                    janitor.remove_unless_held(mapping.space_id, [mapping.code], settle=False)
                self._fixed("codes_without_mapping", len(puts))
            except Exception as exc:  # reported, the repair goes on
                self._failed("codes_without_mapping", ",".join(space_id for space_id, _ in chunk), exc)

    def _delete_dead_mappings(self) -> None:
        orphans = self.report.mappings_with_missing_space
        dead: list[tuple[str, str, str]] = [("mappings_with_missing_space", code, sid) for code, sid in orphans]
        dead += [("stale_mappings", code, space_id) for code, space_id, _ in self.report.stale_mappings]
        for start in range(0, len(dead), BATCH):
            chunk = dead[start : start + BATCH]
            try:
                current = self._current_spaces(list({space_id for _, _, space_id in chunk}))
                deletes = []
                for kind, code, space_id in chunk:
                    space = current.get(space_id)
                    if space is not None and space.invite_code == code:
                        continue  # the space holds this code now: the mapping is live
                    deletes.append(InviteMapping(*InviteMapping.key(code, space_id)))
                    self._fixed(kind)
                with translate_unreachable():
                    write_batch(deletes=deletes)
            except Exception as exc:  # reported, the repair goes on
                self._failed("stale_mappings", ",".join(code for _, code, _ in chunk), exc)
