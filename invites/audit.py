"""The audit: find (and with ``repair``, fix) every invite-code inconsistency in the table.

Shared by ``manage.py audit_invite_codes`` and the admin. One strongly
consistent scan collects, compactly, every space's code, every ``INVITE#``
mapping and every ``CODE#`` claim (memory grows with the number of codes, a
few dozen bytes each); the problems are computed from that.

The engine writes every change as one transaction, so nothing it does is
ever half done: what the audit finds, other writers left (the earlier system,
or a path that writes the guide's layout). Repairs go through the engine or
are transactions of their own whose condition is the very fact that makes
them right (the space still holds the code, or no longer does), so an audit
running beside live traffic never undoes a change made after its scan.

A writer of the guide's layout changes a space and its mappings in separate
writes; such a change in flight is not a problem: the mappings of a space
that changed less than ``grace_seconds`` ago, its missing mapping, and any
mapping younger than ``grace_seconds`` are left out of the findings.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from invites import services as engine
from spaces import keys
from spaces.dynamodb import get_many, short_reason, table_connection, translate_unreachable
from spaces.exceptions import DomainError, DynamoUnavailable
from spaces.models import CodeClaim, InviteMapping, Space, utc_now_iso
from spaces.transactions import Transaction, TransactionCancelled

DEFAULT_GRACE_SECONDS = 60.0
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
            snapshot.claims[keys.strip_prefix(pk, keys.CODE_PREFIX)] = _Claim(_text(raw, "space_id") or "")
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
        if code.upper() not in snapshot.claims:
            report.missing_claims.append((space_id, code))
        # A writer of the guide's layout puts the new mapping after it changed the space.
        if (code, space_id) not in mapped and not _in_flight_space(snapshot, space_id):
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
        # Such a writer also deletes the old mapping after the change, and may put a
        # mapping before the space it names. What the engine writes is never in flight.
        claim = snapshot.claims.get(code.upper())
        written_by_engine = claim is not None and claim.space_id == space_id
        in_flight = _in_flight_space(snapshot, space_id) or (
            not written_by_engine and _age_seconds(created_at, now) < grace_seconds
        )
        if in_flight:
            continue
        if space_id not in snapshot.spaces:
            report.mappings_with_missing_space.append((code, space_id))
        elif snapshot.spaces[space_id] != code:
            report.stale_mappings.append((code, space_id, snapshot.spaces[space_id]))


def _in_flight_space(snapshot: _Snapshot, space_id: str) -> bool:
    """Changed within the grace period by a writer other than the engine (its code has no claim of its own)."""
    if space_id not in snapshot.recently_updated:
        return False
    code = snapshot.spaces.get(space_id)
    claim = snapshot.claims.get(code.upper()) if code else None
    return claim is None or claim.space_id != space_id


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
        wanted = dict(self.report.missing_claims)
        ids = list(wanted)
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            try:
                # Changed since the scan: its new code was claimed by the engine.
                spaces = [s for s in self._current_spaces(chunk).values() if s.invite_code == wanted[s.id]]
                holders = engine.invite_codes_record_existing(spaces=spaces)
            except Exception as exc:  # reported, the repair goes on
                self._failed("missing_claims", ",".join(chunk), exc)
                continue
            for space in spaces:
                try:
                    if holders.get(space.id):
                        # Another space claimed the same code first: a duplicate.
                        engine.invite_code_regenerate(space_id=space.id, space=space, source=self.SOURCE)
                    self._fixed("missing_claims")
                except Exception as exc:  # reported, the repair goes on
                    self._failed("missing_claims", space.id, exc)

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
        for space_id, code in self.report.codes_without_mapping:
            tx = Transaction()
            # Only while the space holds the code and the code is the space's own (not a duplicate).
            tx.put("mapping", InviteMapping.build(code, space_id, utc_now_iso()))
            tx.check("space", Space(*Space.key(space_id)), Space.invite_code == code)
            tx.check("claim", CodeClaim(*CodeClaim.key(code)), CodeClaim.space_id == space_id)
            if self._commit_repair(tx, "codes_without_mapping", space_id):
                self._fixed("codes_without_mapping")

    def _delete_dead_mappings(self) -> None:
        dead: dict[str, list[tuple[str, str]]] = defaultdict(list)  # space id -> (kind, code)
        for code, space_id in self.report.mappings_with_missing_space:
            dead[space_id].append(("mappings_with_missing_space", code))
        for code, space_id, _ in self.report.stale_mappings:
            dead[space_id].append(("stale_mappings", code))
        for space_id, mappings in dead.items():
            tx = Transaction()
            for _kind, code in mappings:
                tx.delete(("mapping", code), InviteMapping(*InviteMapping.key(code, space_id)))
            # Only while none of them is the space's code (a space that is gone holds none).
            dead_codes = [code for _kind, code in mappings]
            still_dead = (
                Space.pk.does_not_exist() | Space.invite_code.does_not_exist() | ~Space.invite_code.is_in(*dead_codes)
            )
            tx.check("space", Space(*Space.key(space_id)), still_dead)
            if self._commit_repair(tx, "stale_mappings", space_id):
                for kind, _code in mappings:
                    self._fixed(kind)

    def _commit_repair(self, tx: Transaction, kind: str, subject: str) -> bool:
        """True when the repair was applied; False when its subject changed since the scan."""
        try:
            with translate_unreachable():
                tx.commit()
        except TransactionCancelled:
            return False  # the condition that made it a repair no longer holds: nothing to do
        except Exception as exc:  # reported, the repair goes on
            self._failed(kind, subject, exc)
            return False
        return True
