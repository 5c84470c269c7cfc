"""The audit's read: one strongly consistent scan into a compact snapshot, and the problems in it.

The snapshot keeps strings only (a few dozen bytes per code), so memory grows
with the number of codes, not with the size of the items.

The snapshot also keeps, for spaces without a code only, which invite-policy
attributes they carry (a space with a code may have any policy: that is no
problem), and the scan reports its progress page by page to an optional
:class:`ScanProgress` (the command's progress bar).

A writer of the guide's layout changes a space and its mappings in separate
writes; such a change in flight is not a problem: the mappings of a space
that changed less than ``grace_seconds`` ago, its missing mapping, and any
mapping younger than ``grace_seconds`` are left out of the findings. What the
engine writes is one transaction, never in flight.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from invites import codes
from invites.audit.findings import (
    CodeWithoutMapping,
    DuplicateCode,
    Finding,
    LegacyFormatCode,
    MappingWithMissingSpace,
    MissingClaim,
    PolicyWithoutCode,
    SpaceWithoutCode,
    StaleMapping,
)
from spaces import keys
from spaces.dynamodb import table_connection, translate_unreachable

DEFAULT_GRACE_SECONDS = 60.0
# The invite policy's attributes on the space item, by their stored names (spaces.models.Space).
POLICY_ATTRIBUTES = ("invite_expires_at", "invite_max_uses", "invite_uses", "invite_paused")
SCANNED_ATTRIBUTES = (
    "PK",
    "SK",
    "id",
    "invite_code",
    "space_id",
    "code",
    "created_at",
    "updated_at",
    *POLICY_ATTRIBUTES,
)


class ScanProgress(Protocol):
    """Told how many items each scan page held, and when the scan is over."""

    def advance(self, items: int) -> None: ...

    def finish(self) -> None: ...


@dataclass
class Snapshot:
    """What the scan saw, kept small: strings only, no model objects."""

    spaces: dict[str, str | None] = field(default_factory=dict)  # space id -> code
    mappings: list[tuple[str, str, str | None]] = field(default_factory=list)  # (code, space_id, created_at)
    claims: dict[str, str] = field(default_factory=dict)  # CODE (upper) -> the claimant's space id
    # Spaces whose code (or anything else) changed within the grace period.
    recently_updated: set[str] = field(default_factory=set)
    # Spaces without a code that carry policy attributes -> the attributes' names.
    policies_without_code: dict[str, tuple[str, ...]] = field(default_factory=dict)
    items: int = 0

    def claimant(self, code: str) -> str | None:
        return self.claims.get(code.upper())

    def in_flight(self, space_id: str) -> bool:
        """Changed within the grace period by a writer other than the engine (its code has no claim of its own)."""
        if space_id not in self.recently_updated:
            return False
        code = self.spaces.get(space_id)
        return not code or self.claimant(code) != space_id


def take_snapshot(grace_seconds: float, progress: ScanProgress | None = None) -> Snapshot:
    """Raises :class:`DynamoUnavailable` when the table cannot be reached."""
    snapshot = Snapshot()
    now = datetime.now(UTC)
    for raw in _scan_items(progress):
        snapshot.items += 1
        pk, sk = raw["PK"]["S"], raw["SK"]["S"]
        if pk.startswith(keys.SPACE_PREFIX) and sk == keys.SPACE_METADATA_SK:
            _add_space(snapshot, raw, pk, grace_seconds, now)
        elif pk.startswith(keys.INVITE_PREFIX) and sk.startswith(keys.SPACE_PREFIX):
            code = keys.strip_prefix(pk, keys.INVITE_PREFIX)
            snapshot.mappings.append((code, keys.strip_prefix(sk, keys.SPACE_PREFIX), _text(raw, "created_at")))
        elif pk.startswith(keys.CODE_PREFIX) and sk == keys.CODE_CLAIM_SK:
            snapshot.claims[keys.strip_prefix(pk, keys.CODE_PREFIX)] = _text(raw, "space_id") or ""
    return snapshot


def _add_space(snapshot: Snapshot, raw: dict[str, Any], pk: str, grace_seconds: float, now: datetime) -> None:
    space_id = _text(raw, "id") or keys.strip_prefix(pk, keys.SPACE_PREFIX)
    code = _text(raw, "invite_code") or None
    snapshot.spaces[space_id] = code
    if age_seconds(_text(raw, "updated_at"), now) < grace_seconds:
        snapshot.recently_updated.add(space_id)
    if code is None:
        carried = tuple(name for name in POLICY_ATTRIBUTES if _policy_in_effect(raw.get(name)))
        if carried:
            snapshot.policies_without_code[space_id] = carried


def _policy_in_effect(value: dict[str, Any] | None) -> bool:
    """Whether a stored policy attribute says anything: present, and not ``false``, null or a zero count."""
    if not value or value.get("NULL"):
        return False
    if "BOOL" in value:
        return bool(value["BOOL"])
    if "N" in value:
        return value["N"] not in ("0", "0.0")
    return True  # another type than the engine writes: worth a look all the same


def find_problems(snapshot: Snapshot, grace_seconds: float) -> list[Finding]:
    """Every problem in the snapshot, spaces first, then codes held twice, then mappings."""
    return [*_space_findings(snapshot), *_holder_findings(snapshot), *_mapping_findings(snapshot, grace_seconds)]


def _space_findings(snapshot: Snapshot) -> Iterator[Finding]:
    mapped = {(code, space_id) for code, space_id, _ in snapshot.mappings}
    for space_id, code in snapshot.spaces.items():
        if not code:
            yield SpaceWithoutCode(space_id)
            if space_id in snapshot.policies_without_code:
                yield PolicyWithoutCode(space_id, snapshot.policies_without_code[space_id])
            continue
        if not codes.is_new_format(code):
            yield LegacyFormatCode(space_id, code)
        if snapshot.claimant(code) is None:
            yield MissingClaim(space_id, code)
        # A writer of the guide's layout puts the new mapping after it changed the space.
        if (code, space_id) not in mapped and not snapshot.in_flight(space_id):
            yield CodeWithoutMapping(space_id, code)


def _holder_findings(snapshot: Snapshot) -> Iterator[Finding]:
    holders: dict[str, list[str]] = defaultdict(list)
    for space_id, code in snapshot.spaces.items():
        if code:
            holders[code.upper()].append(space_id)
    for code_upper, space_ids in holders.items():
        claimant = snapshot.claims.get(code_upper)
        held_as = snapshot.spaces[space_ids[0]] or code_upper
        if len(space_ids) > 1:
            yield DuplicateCode(held_as, sorted(space_ids))
        elif claimant is not None and claimant != space_ids[0]:
            # The only holder is not the claimant: the claim belongs to another
            # (possibly deleted) space, so this space's code is not unique by
            # construction. Regenerating it is the fix.
            yield DuplicateCode(held_as, [space_ids[0]])


def _mapping_findings(snapshot: Snapshot, grace_seconds: float) -> Iterator[Finding]:
    now = datetime.now(UTC)
    for code, space_id, created_at in snapshot.mappings:
        # Such a writer also deletes the old mapping after the change, and may put a
        # mapping before the space it names. What the engine writes is never in flight.
        written_by_engine = snapshot.claimant(code) == space_id
        young = not written_by_engine and age_seconds(created_at, now) < grace_seconds
        if snapshot.in_flight(space_id) or young:
            continue
        if space_id not in snapshot.spaces:
            yield MappingWithMissingSpace(code, space_id)
        elif snapshot.spaces[space_id] != code:
            yield StaleMapping(code, space_id, snapshot.spaces[space_id])


def age_seconds(timestamp: str | None, now: datetime) -> float:
    """How old an ISO timestamp is; infinitely old when it is missing or unreadable."""
    if not timestamp:
        return float("inf")
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return float("inf")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (now - moment).total_seconds()


def _text(raw: dict[str, Any], name: str) -> str | None:
    value = raw.get(name)
    return value.get("S") if value else None


def _scan_items(progress: ScanProgress | None) -> Iterator[dict[str, Any]]:
    connection = table_connection()
    start_key = None
    while True:
        with translate_unreachable():
            page = connection.scan(
                attributes_to_get=list(SCANNED_ATTRIBUTES), consistent_read=True, exclusive_start_key=start_key
            )
        items = page.get("Items", [])
        yield from items
        if progress is not None:
            progress.advance(len(items))
        start_key = page.get("LastEvaluatedKey")
        if start_key is None:
            return
