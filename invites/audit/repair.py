"""The audit's repair: fix each finding, never undoing a change made after the scan.

Repairs go through the engine (``invites.services``) or are transactions of
their own whose condition is the very fact that makes them right (the space
still holds the code, or no longer does). Each fix re-reads its subject,
strongly consistent, and acts only if it is still needed. One failing fix is
recorded and the others go on; DynamoDB becoming unreachable stops the repair.
Warnings (legacy-format codes) are not repaired: replacing a working code is
the backfill's ``--replace-legacy-codes``, with its dry run and report.
"""

from __future__ import annotations

from collections import defaultdict

from pynamodb.exceptions import DoesNotExist

from invites import services as engine
from invites.audit.findings import AuditReport, FindingKind, RepairFailure
from invites.policies import InvitePolicy, policy_actions
from spaces.dynamodb import get_many, short_reason, translate_unreachable
from spaces.exceptions import DomainError, DynamoUnavailable
from spaces.models import CodeClaim, InviteMapping, Space, utc_now_iso
from spaces.transactions import Transaction, TransactionCancelled

SOURCE = "audit"
BATCH = 25


class Repair:
    """Fixes the findings of one report and counts what it fixed in the same report."""

    def __init__(self, report: AuditReport) -> None:
        self.report = report

    def run(self) -> None:
        self._record_missing_claims()
        self._fix_duplicates()
        # Before the spaces without a code get one: their new code must not inherit a stray policy.
        self._clear_policies_without_code()
        self._give_codes()
        self._write_missing_mappings()
        self._delete_dead_mappings()

    def _fixed(self, kind: FindingKind, count: int = 1) -> None:
        self.report.repaired[kind] = self.report.repaired.get(kind, 0) + count

    def _failed(self, kind: FindingKind, subject: str, exc: BaseException) -> None:
        if isinstance(exc, DynamoUnavailable):
            raise exc
        error = str(exc) if isinstance(exc, DomainError) else short_reason(exc)
        self.report.repair_failures.append(RepairFailure(kind, subject, error))

    def _record_missing_claims(self) -> None:
        kind = FindingKind.MISSING_CLAIMS
        wanted = {finding.space_id: finding.code for finding in self.report.missing_claims}
        for chunk in _chunks(list(wanted)):
            try:
                # Changed since the scan: its new code was claimed by the engine.
                spaces = [s for s in _current_spaces(chunk).values() if s.invite_code == wanted[s.id]]
                holders = engine.invite_codes_record_existing(spaces=spaces)
            except Exception as exc:  # recorded, the repair goes on
                self._failed(kind, ",".join(chunk), exc)
                continue
            for space in spaces:
                try:
                    if holders.get(space.id):
                        # Another space claimed the same code first: a duplicate.
                        engine.invite_code_regenerate(space_id=space.id, space=space, source=SOURCE)
                    self._fixed(kind)
                except Exception as exc:  # recorded, the repair goes on
                    self._failed(kind, space.id, exc)

    def _fix_duplicates(self) -> None:
        for code, space_ids in self.report.duplicate_codes:
            try:
                claimant = _claimant(code)
                current = _current_spaces(space_ids)
                for space in (current[space_id] for space_id in space_ids if space_id in current):
                    still_holds = space.invite_code is not None and space.invite_code.upper() == code.upper()
                    if still_holds and space.id != claimant:  # the rightful holder keeps its code
                        engine.invite_code_regenerate(space_id=space.id, space=space, source=SOURCE)
                self._fixed(FindingKind.DUPLICATE_CODES)
            except Exception as exc:  # recorded, the repair goes on
                self._failed(FindingKind.DUPLICATE_CODES, code, exc)

    def _clear_policies_without_code(self) -> None:
        kind = FindingKind.POLICIES_WITHOUT_CODE
        no_policy = policy_actions(InvitePolicy(), reset_uses=True)  # removes every policy attribute
        for finding in self.report.policies_without_code:
            tx = Transaction()
            # Only while the space still has no code: a code's policy is its owner's choice.
            still_bare = Space.pk.exists() & Space.invite_code.does_not_exist()
            tx.update("space", Space(*Space.key(finding.space_id)), no_policy, condition=still_bare)
            if self._commit(tx, kind, finding.space_id):
                self._fixed(kind)

    def _give_codes(self) -> None:
        kind = FindingKind.SPACES_WITHOUT_CODE
        for chunk in _chunks(self.report.spaces_without_code):
            try:
                spaces = list(_current_spaces(chunk).values())
                changes = engine.invite_code_assign_if_missing(spaces=spaces, source=SOURCE)
                self._fixed(kind, sum(1 for change in changes if change.applied))
            except Exception as exc:  # recorded, the repair goes on
                self._failed(kind, ",".join(chunk), exc)

    def _write_missing_mappings(self) -> None:
        kind = FindingKind.CODES_WITHOUT_MAPPING
        for space_id, code in self.report.codes_without_mapping:
            tx = Transaction()
            # Only while the space holds the code and the code is the space's own (not a duplicate).
            tx.put("mapping", InviteMapping.build(code, space_id, utc_now_iso()))
            tx.check("space", Space(*Space.key(space_id)), Space.invite_code == code)
            tx.check("claim", CodeClaim(*CodeClaim.key(code)), CodeClaim.space_id == space_id)
            if self._commit(tx, kind, space_id):
                self._fixed(kind)

    def _delete_dead_mappings(self) -> None:
        dead: dict[str, list[tuple[FindingKind, str]]] = defaultdict(list)  # space id -> (kind, code)
        for finding in [*self.report.mappings_with_missing_space, *self.report.stale_mappings]:
            dead[finding.space_id].append((finding.kind, finding.code))
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
            if self._commit(tx, FindingKind.STALE_MAPPINGS, space_id):
                for kind, _code in mappings:
                    self._fixed(kind)

    def _commit(self, tx: Transaction, kind: FindingKind, subject: str) -> bool:
        """True when the repair was applied; False when its subject changed since the scan."""
        try:
            with translate_unreachable():
                tx.commit()
        except TransactionCancelled:
            return False  # the condition that made it a repair no longer holds: nothing to do
        except Exception as exc:  # recorded, the repair goes on
            self._failed(kind, subject, exc)
            return False
        return True


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[start : start + BATCH] for start in range(0, len(ids), BATCH)]


def _current_spaces(space_ids: list[str]) -> dict[str, Space]:
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in space_ids])
    return {space.id: space for space in (Space.from_raw_data(raw) for raw in found.values())}


def _claimant(code: str) -> str | None:
    """The space id in the code's claim, strongly consistent; None when the code is unclaimed."""
    with translate_unreachable():
        try:
            return CodeClaim.get(*CodeClaim.key(code), consistent_read=True).space_id
        except DoesNotExist:
            return None
