"""The audit: find (and with ``repair``, fix) every invite-code inconsistency; the command and the admin render it.
The engine writes every change in one transaction: what the audit finds, other writers left."""

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, cast

from invites import assignment, codes
from invites import services as engine
from invites.policies import InvitePolicy, policy_actions
from spaces import keys
from spaces.dynamodb import get_many, scan_pages, short_reason, translate_unreachable
from spaces.exceptions import DynamoUnavailable
from spaces.models import CodeClaim, InviteMapping, Space, utc_now_iso
from spaces.table import table_flag_set
from spaces.transactions import Transaction, TransactionCancelled

DEFAULT_GRACE_SECONDS = 60.0
BATCH = 25  # spaces read back per repair step
POLICY_ATTRIBUTES = ("invite_expires_at", "invite_max_uses", "invite_uses", "invite_paused")
SCANNED = ["PK", "SK", "id", "name", "invite_code", "space_id", "created_at", "updated_at", *POLICY_ATTRIBUTES]


class Kind(StrEnum):
    SPACES_WITHOUT_CODE = "spaces_without_code"
    POLICIES_WITHOUT_CODE = "policies_without_code"
    CODES_WITHOUT_MAPPING = "codes_without_mapping"
    DUPLICATE_CODES = "duplicate_codes"
    MAPPINGS_WITH_MISSING_SPACE = "mappings_with_missing_space"
    STALE_MAPPINGS = "stale_mappings"
    MISSING_CLAIMS = "missing_claims"
    LEGACY_FORMAT_CODES = "legacy_format_codes"


class KindInfo(NamedTuple):
    label: str
    harmful: bool  # keeps someone out of a space or lets them into the wrong one: a problem, else a warning
    meaning: str
    repair: str


KINDS = {
    Kind.SPACES_WITHOUT_CODE: KindInfo("Spaces without an invite code", True,
        "The space has no invite code, so nobody can be invited to it.",
        "gives the space a new code"),
    Kind.POLICIES_WITHOUT_CODE: KindInfo("Invite policies on spaces without a code", True,
        "A space without a code carries another writer's invite policy: its next code would be born paused or used up.",
        "removes the policy attributes, if the space still has no code (before spaces without a code get one)"),
    Kind.CODES_WITHOUT_MAPPING: KindInfo("Codes without an INVITE# mapping", True,
        "The mapping of the space's code is missing: readers of the guide's layout cannot find the space by its code.",
        "writes the mapping, if the space still holds the code and the code's claim is its own"),
    Kind.DUPLICATE_CODES: KindInfo("Spaces holding another space's code", True,
        "Another space holds the same code (ignoring case) or claimed it: a link may lead into the wrong space.",
        "the space that claimed the code keeps it; every other holder gets a new code (its old links stop working)"),
    Kind.MAPPINGS_WITH_MISSING_SPACE: KindInfo("Mappings whose space is missing", False,
        "An INVITE# mapping points at a space that does not exist; it lets nobody in.",
        "deletes the mapping"),
    Kind.STALE_MAPPINGS: KindInfo("Stale mappings (the space holds another code)", False,
        "An INVITE# mapping names a space that holds another code now, or none; it lets nobody in.",
        "deletes the mapping, if the space still does not hold its code"),
    Kind.MISSING_CLAIMS: KindInfo("Held codes without a claim", False,
        "The space's code has no CODE# claim (the earlier system wrote it): it works, but is unique only by chance.",
        "records the claim; if another space claimed the code first, this one gets a new code"),
    Kind.LEGACY_FORMAT_CODES: KindInfo("Legacy-format codes", False,
        f"The code is not in the current format ({codes.CODE_LENGTH} characters of {codes.ALPHABET}): easier to guess.",
        "leaves them alone (they work); backfill_invite_codes --replace-legacy-codes replaces them (--dry-run first)"),
}  # fmt: skip


@dataclass(frozen=True)
class Finding:
    kind: Kind
    space_id: str | None  # the existing space it is about; None when there is none
    code: str | None = None
    name: str = ""  # the space's name, "" if unknown
    other_space_id: str | None = None  # the missing space a mapping names, or the code's other holder or claimant
    detail: str = ""  # the rest of the line: the code the space holds now, the policy attributes

    def describe(self) -> str:
        named = f" '{self.name}'" if self.name else ""
        space = f"space{named} (ID: {self.space_id})" if self.space_id else f"missing space (ID: {self.other_space_id})"
        if self.kind in (Kind.MAPPINGS_WITH_MISSING_SPACE, Kind.STALE_MAPPINGS):
            return f"mapping '{self.code}' -> {space}{self.detail}"
        return space + (f" code '{self.code}'" if self.code else "") + self.detail


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    total_items: int = 0
    total_spaces: int = 0
    seconds: float = 0.0
    repaired: Counter[Kind] = field(default_factory=Counter)
    changes: list[engine.SpaceOutcome] = field(default_factory=list)  # what the repair changed
    repair_failures: list[tuple[Finding, str]] = field(default_factory=list)
    marked_legacy_codes_recorded: bool = False

    @property
    def problems(self) -> list[Finding]:
        return [finding for finding in self.findings if KINDS[finding.kind].harmful]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if not KINDS[finding.kind].harmful]

    @property
    def clean(self) -> bool:  # no problems (there may be warnings)
        return not self.problems

    def of(self, kind: Kind) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind is kind]

    def counts(self) -> dict[str, int]:
        return {kind.value: len(self.of(kind)) for kind in Kind}

    def failure_texts(self) -> list[str]:
        return [f"{KINDS[f.kind].label} ({f.describe()}): {error}" for f, error in self.repair_failures]


def audit_invite_codes(
    *, repair: bool, grace_seconds: float = DEFAULT_GRACE_SECONDS, progress: Callable[[int, bool], Any] | None = None
) -> AuditReport:
    """Find (``progress(items, last)`` hears of each scan page) and with ``repair`` fix; raises DynamoUnavailable."""
    started = time.monotonic()
    snapshot = _Snapshot(grace_seconds)
    snapshot.take(progress or (lambda items, last: None))
    named = [replace(finding, name=snapshot.names.get(finding.space_id or "", "")) for finding in snapshot.findings()]
    report = AuditReport(sorted(named, key=lambda f: list(Kind).index(f.kind)), snapshot.items, len(snapshot.spaces))
    if repair:
        _repair(report)
        if not report.repair_failures and not engine.legacy_codes_recorded():  # every held code has a claim now
            table_flag_set(engine.LEGACY_CODES_RECORDED, by="audit")
            report.marked_legacy_codes_recorded = True
    report.seconds = time.monotonic() - started
    return report


class _Snapshot:
    """What one strongly consistent scan saw, as strings. A writer of the guide's layout changes a space and its
    mappings in separate writes: what it changed within the grace period may be in flight, not a finding."""

    def __init__(self, grace_seconds: float) -> None:
        self.horizon, self.items = datetime.now(UTC) - timedelta(seconds=grace_seconds), 0
        self.spaces: dict[str, str | None] = {}  # space id -> code
        self.names: dict[str, str] = {}
        self.mappings: list[tuple[str, str, str | None]] = []  # (code, space id, created_at)
        self.claims: dict[str, str] = {}  # CODE (upper) -> the claimant's space id
        self.updated: dict[str, str | None] = {}  # space id -> updated_at
        self.policies: dict[str, list[str]] = {}  # space id -> the policy attributes it carries without a code

    def take(self, progress: Callable[[int, bool], Any]) -> None:
        for page in scan_pages(attributes_to_get=SCANNED, consistent_read=True):
            for raw in page.get("Items", []):
                self._add(raw)
            progress(len(page.get("Items", [])), False)
        progress(0, True)

    def _add(self, raw: dict[str, Any]) -> None:
        self.items += 1
        text = {name: value.get("S") for name, value in raw.items()}
        pk, sk = text["PK"], text["SK"]
        if pk.startswith(keys.SPACE_PREFIX) and sk == keys.SPACE_METADATA_SK:
            space_id = text.get("id") or pk.removeprefix(keys.SPACE_PREFIX)
            self.spaces[space_id] = code = text.get("invite_code") or None
            self.names[space_id] = text.get("name") or ""
            self.updated[space_id] = text.get("updated_at")
            self.policies[space_id] = [name for name in POLICY_ATTRIBUTES if code is None and _in_effect(raw.get(name))]
        elif pk.startswith(keys.INVITE_PREFIX) and sk.startswith(keys.SPACE_PREFIX):
            space_id = sk.removeprefix(keys.SPACE_PREFIX)
            self.mappings.append((pk.removeprefix(keys.INVITE_PREFIX), space_id, text.get("created_at")))
        elif pk.startswith(keys.CODE_PREFIX) and sk == keys.CODE_CLAIM_SK:
            self.claims[pk.removeprefix(keys.CODE_PREFIX)] = text.get("space_id") or ""

    def _young(self, timestamp: str | None) -> bool:
        try:
            moment = datetime.fromisoformat(timestamp or "")
        except ValueError:
            return False  # missing or unreadable: old
        return moment.replace(tzinfo=moment.tzinfo or UTC) > self.horizon

    def _in_flight(self, space_id: str) -> bool:
        """Changed within the grace period by a writer other than the engine (its code has no claim of its own)."""
        code = self.spaces.get(space_id)
        return self._young(self.updated.get(space_id)) and (not code or self.claims.get(code.upper()) != space_id)

    def findings(self) -> Iterator[Finding]:
        mapped = {(code, space_id) for code, space_id, _ in self.mappings}
        holders: dict[str, list[str]] = defaultdict(list)
        for space_id, code in self.spaces.items():
            if not code:
                yield Finding(Kind.SPACES_WITHOUT_CODE, space_id)
                if carried := self.policies[space_id]:
                    yield Finding(Kind.POLICIES_WITHOUT_CODE, space_id, detail=f" ({', '.join(carried)})")
                continue
            holders[code.upper()].append(space_id)
            if not codes.is_new_format(code):
                yield Finding(Kind.LEGACY_FORMAT_CODES, space_id, code)
            if code.upper() not in self.claims:
                yield Finding(Kind.MISSING_CLAIMS, space_id, code)
            # A writer of the guide's layout puts the new mapping after it changed the space.
            if (code, space_id) not in mapped and not self._in_flight(space_id):
                yield Finding(Kind.CODES_WITHOUT_MAPPING, space_id, code)
        for code_upper, space_ids in holders.items():
            # The claimant keeps the code; unclaimed, the first holder keeps it (and gets the claim on repair).
            keeper = self.claims.get(code_upper, space_ids[0])
            detail = f", {'also held' if keeper in space_ids else 'claimed'} by space {keeper}"
            for space_id in (space_id for space_id in space_ids if space_id != keeper):
                code = self.spaces[space_id]
                yield Finding(Kind.DUPLICATE_CODES, space_id, code, other_space_id=keeper, detail=detail)
        for code, space_id, created_at in self.mappings:
            # A writer of the guide's layout deletes the old mapping after the change, and may put a mapping
            # before its space. What the engine writes (claimed by the mapped space) is never in flight.
            young = self.claims.get(code.upper()) != space_id and self._young(created_at)
            if self._in_flight(space_id) or young:
                continue
            if space_id not in self.spaces:
                yield Finding(Kind.MAPPINGS_WITH_MISSING_SPACE, None, code, other_space_id=space_id)
            elif self.spaces[space_id] != code:
                holds = self.spaces[space_id] or "(none)"
                yield Finding(Kind.STALE_MAPPINGS, space_id, code, detail=f", which holds '{holds}'")


def _in_effect(value: Any) -> bool:
    """Present and not false, null or a zero count (another type than the engine writes: worth a look)."""
    return bool(value and not value.get("NULL") and value.get("BOOL", True) and value.get("N") not in ("0", "0.0"))


def _repair(report: AuditReport) -> None:
    """Fix each finding only if its subject (re-read, or a write's condition) still needs it; a failure is recorded
    and the rest go on, an unreachable DynamoDB stops it. Legacy-format codes are the backfill's."""
    for findings in [*_batches(report.of(Kind.MISSING_CLAIMS)), *_batches(report.of(Kind.DUPLICATE_CODES))]:
        with _guard(report, findings):  # claim each held code; the claimant keeps it, other holders get a new one
            current = _current_spaces(finding.space_id for finding in findings)
            # A space whose code changed since the scan holds a code the engine claimed: nothing to do.
            held = [f for f in findings if f.space_id in current and current[f.space_id].invite_code == f.code]
            claimed_by = assignment.invite_codes_record_existing(spaces=[current[f.space_id] for f in held])
            for finding in held:
                with _guard(report, [finding]):
                    space, outcome = current[finding.space_id], None
                    if claimed_by.get(space.id):  # another space claimed the code first: this one gets a new code
                        outcome = engine.invite_code_regenerate(space_id=space.id, space=space, source="audit")
                    _fixed(report, finding, outcome)
    # Before the spaces without a code get one: their new code must not inherit a stray policy.
    no_policy, bare = policy_actions(InvitePolicy(), reset_uses=True), Space.invite_code.does_not_exist()
    for finding in report.of(Kind.POLICIES_WITHOUT_CODE):
        tx = Transaction()
        tx.update("space", _space(finding.space_id), no_policy, condition=Space.pk.exists() & bare)
        _commit(report, tx, finding)
    for findings in _batches(report.of(Kind.SPACES_WITHOUT_CODE)):
        with _guard(report, findings):
            by_id = {finding.space_id: finding for finding in findings}
            spaces = [*_current_spaces(by_id).values()]
            for outcome in assignment.invite_code_assign_if_missing(spaces=spaces, source="audit"):
                if outcome.error:
                    report.repair_failures.append((by_id[outcome.space_id], outcome.error))
                elif outcome.applied:
                    _fixed(report, by_id[outcome.space_id], outcome)
    for finding in report.of(Kind.CODES_WITHOUT_MAPPING):
        tx = Transaction()  # only while the space holds the code and the code is its own
        tx.put("mapping", InviteMapping.build(cast(str, finding.code), cast(str, finding.space_id), utc_now_iso()))
        tx.check("space", _space(finding.space_id), Space.invite_code == finding.code)
        tx.check("claim", CodeClaim(*CodeClaim.key(cast(str, finding.code))), CodeClaim.space_id == finding.space_id)
        _commit(report, tx, finding)
    for finding in [*report.of(Kind.MAPPINGS_WITH_MISSING_SPACE), *report.of(Kind.STALE_MAPPINGS)]:
        space_id = finding.space_id or finding.other_space_id or ""
        tx = Transaction()  # only while it is not the space's code (a space that is gone holds none)
        tx.delete("mapping", InviteMapping(*InviteMapping.key(cast(str, finding.code), space_id)))
        live = ~Space.invite_code.is_in(cast(str, finding.code))
        tx.check("space", _space(space_id), Space.pk.does_not_exist() | Space.invite_code.does_not_exist() | live)
        _commit(report, tx, finding)


def _fixed(report: AuditReport, finding: Finding, outcome: engine.SpaceOutcome | None = None) -> None:
    report.repaired[finding.kind] += 1
    if outcome is not None and outcome.applied:
        report.changes.append(replace(outcome, name=finding.name))


@contextmanager
def _guard(report: AuditReport, findings: list[Finding]) -> Iterator[None]:
    try:
        yield
    except DynamoUnavailable:
        raise
    except Exception as exc:  # recorded, the repair goes on
        report.repair_failures += [(finding, short_reason(exc)) for finding in findings]


def _commit(report: AuditReport, tx: Transaction, finding: Finding) -> None:
    # A cancelled repair: its condition no longer holds (the subject changed since the scan), nothing to do.
    with _guard(report, [finding]), translate_unreachable(), suppress(TransactionCancelled):
        tx.commit()
        _fixed(report, finding)


def _batches(findings: list[Finding]) -> Iterator[list[Finding]]:
    return (findings[start : start + BATCH] for start in range(0, len(findings), BATCH))


def _space(space_id: str | None) -> Space:
    return Space(*Space.key(space_id or ""))


def _current_spaces(space_ids: Iterable[str | None]) -> dict[str | None, Space]:
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in space_ids if space_id])
    return {space.id: space for space in map(Space.from_raw_data, found.values())}
