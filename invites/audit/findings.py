"""What the audit finds: the kinds of problem, one typed finding per problem, and the report.

This module is the one home of each kind's wording: its label, what it
means, whether it is harmful, whether it is only a warning, and what
``--repair`` does about it. Both front doors (``manage.py audit_invite_codes``
and the admin's audit page) render these and write no wording of their own.

A *warning* kind (``FindingKind.warning``) is listed like the others but is
not a problem: the data is consistent, only worth acting on. Warnings never
make the audit fail (``AuditReport.problem_count`` and ``clean`` leave them
out) and ``--repair`` leaves them alone.

A finding is a ``NamedTuple``: typed, immutable, and still unpacks and
compares like the plain tuple it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, TypeVar

from invites.codes import ALPHABET, CODE_LENGTH


@dataclass(frozen=True)
class KindText:
    label: str
    meaning: str
    # True when it can keep someone out of a space or let them into the wrong one.
    harmful: bool
    repair: str
    # True for a finding that is worth listing but is not a problem (see the module's docstring).
    warning: bool = False


class FindingKind(StrEnum):
    """A kind of invite-code inconsistency, in the order the audit reports them.

    The value names the report's list of that kind and keys its repair counts.
    """

    SPACES_WITHOUT_CODE = "spaces_without_code"
    CODES_WITHOUT_MAPPING = "codes_without_mapping"
    MAPPINGS_WITH_MISSING_SPACE = "mappings_with_missing_space"
    STALE_MAPPINGS = "stale_mappings"
    DUPLICATE_CODES = "duplicate_codes"
    MISSING_CLAIMS = "missing_claims"
    POLICIES_WITHOUT_CODE = "policies_without_code"
    # Warnings, after the problems.
    LEGACY_FORMAT_CODES = "legacy_format_codes"

    @property
    def label(self) -> str:
        return KIND_TEXTS[self].label

    @property
    def meaning(self) -> str:
        return KIND_TEXTS[self].meaning

    @property
    def harmful(self) -> bool:
        return KIND_TEXTS[self].harmful

    @property
    def repair(self) -> str:
        return KIND_TEXTS[self].repair

    @property
    def warning(self) -> bool:
        return KIND_TEXTS[self].warning


KIND_TEXTS = {
    FindingKind.SPACES_WITHOUT_CODE: KindText(
        label="Spaces without an invite code",
        meaning="The space has no invite code, so nobody can be invited to it.",
        harmful=True,
        repair="gives the space a new code",
    ),
    FindingKind.CODES_WITHOUT_MAPPING: KindText(
        label="Codes without an INVITE# mapping",
        meaning="The space holds a code whose INVITE# mapping is missing: readers of the guide's layout cannot "
        "find the space by its code, and without a claim nobody can join with it.",
        harmful=True,
        repair="writes the mapping, if the space still holds the code and the code's claim is its own",
    ),
    FindingKind.MAPPINGS_WITH_MISSING_SPACE: KindText(
        label="Mappings whose space is missing",
        meaning="An INVITE# mapping points at a space that does not exist; it lets nobody in.",
        harmful=False,
        repair="deletes the mapping",
    ),
    FindingKind.STALE_MAPPINGS: KindText(
        label="Stale mappings (the space holds another code)",
        meaning="An INVITE# mapping names a space that holds another code now, or none; it lets nobody in, "
        "since joining checks the code the space holds.",
        harmful=False,
        repair="deletes the mapping, if the space still does not hold its code",
    ),
    FindingKind.DUPLICATE_CODES: KindText(
        label="Codes held by two spaces",
        meaning="More than one space holds the code (ignoring case), or its only holder is not the space that "
        "claimed it: an invite link may lead into the wrong space.",
        harmful=True,
        repair="the space that claimed the code keeps it; every other holder gets a new code "
        "(its old links stop working)",
    ),
    FindingKind.MISSING_CLAIMS: KindText(
        label="Held codes without a claim",
        meaning="A space holds a code without its CODE# claim (a code the earlier system wrote): it works, "
        "but it is unique only by chance, not by construction.",
        harmful=False,
        repair="records the claim; if another space claimed the code first, this one gets a new code",
    ),
    FindingKind.POLICIES_WITHOUT_CODE: KindText(
        label="Invite policies on spaces without a code",
        meaning="A space without an invite code carries invite-policy attributes (invite_expires_at, "
        "invite_max_uses, invite_uses, invite_paused), left by another writer: the code a backfill or a repair "
        "gives the space would inherit them, and be born paused, expired or used up.",
        harmful=True,
        repair="removes the policy attributes, if the space still has no code (before spaces without a code get one)",
    ),
    FindingKind.LEGACY_FORMAT_CODES: KindText(
        label="Legacy-format codes (warning)",
        meaning=f"The space holds a code that is not in the current format ({CODE_LENGTH} upper-case characters "
        f"of {ALPHABET}), such as the earlier system's lower-case hex codes or the guide's token_urlsafe codes: "
        "it works, but it is easier to guess, and the earlier system gave it no expiry. A warning, not a "
        "problem: it does not fail the audit.",
        harmful=False,
        repair="left alone by --repair (the codes work); replace them with "
        "manage.py backfill_invite_codes --replace-legacy-codes (a --dry-run first)",
        warning=True,
    ),
}


class SpaceWithoutCode(NamedTuple):
    space_id: str

    kind = FindingKind.SPACES_WITHOUT_CODE

    def describe(self) -> str:
        return f"space {self.space_id}"

    @property
    def subject_space_id(self) -> str | None:
        """The one existing space this finding is about (the admin links to it), if there is one."""
        return self.space_id


class CodeWithoutMapping(NamedTuple):
    space_id: str
    code: str

    kind = FindingKind.CODES_WITHOUT_MAPPING

    def describe(self) -> str:
        return f"space {self.space_id} code '{self.code}'"

    @property
    def subject_space_id(self) -> str | None:
        return self.space_id


class MappingWithMissingSpace(NamedTuple):
    code: str
    space_id: str

    kind = FindingKind.MAPPINGS_WITH_MISSING_SPACE

    def describe(self) -> str:
        return f"mapping '{self.code}' -> missing space {self.space_id}"

    @property
    def subject_space_id(self) -> str | None:
        return None  # the space does not exist


class StaleMapping(NamedTuple):
    code: str
    space_id: str
    current: str | None  # the code the space holds now

    kind = FindingKind.STALE_MAPPINGS

    def describe(self) -> str:
        return f"mapping '{self.code}' -> space {self.space_id}, which holds '{self.current or '(none)'}'"

    @property
    def subject_space_id(self) -> str | None:
        return self.space_id


class DuplicateCode(NamedTuple):
    code: str
    space_ids: list[str]  # the holders, sorted

    kind = FindingKind.DUPLICATE_CODES

    def describe(self) -> str:
        return f"code '{self.code}' held by {', '.join(self.space_ids)}"

    @property
    def subject_space_id(self) -> str | None:
        return None  # one code, several spaces


class MissingClaim(NamedTuple):
    space_id: str
    code: str

    kind = FindingKind.MISSING_CLAIMS

    def describe(self) -> str:
        return f"space {self.space_id} code '{self.code}'"

    @property
    def subject_space_id(self) -> str | None:
        return self.space_id


class PolicyWithoutCode(NamedTuple):
    space_id: str
    attributes: tuple[str, ...]  # the policy attributes the space carries, by their stored names

    kind = FindingKind.POLICIES_WITHOUT_CODE

    def describe(self) -> str:
        return f"space {self.space_id} ({', '.join(self.attributes)})"

    @property
    def subject_space_id(self) -> str | None:
        return self.space_id


class LegacyFormatCode(NamedTuple):
    space_id: str
    code: str

    kind = FindingKind.LEGACY_FORMAT_CODES

    def describe(self) -> str:
        return f"space {self.space_id} code '{self.code}'"

    @property
    def subject_space_id(self) -> str | None:
        return self.space_id


Finding = (
    SpaceWithoutCode
    | CodeWithoutMapping
    | MappingWithMissingSpace
    | StaleMapping
    | DuplicateCode
    | MissingClaim
    | PolicyWithoutCode
    | LegacyFormatCode
)
F = TypeVar(
    "F",
    SpaceWithoutCode,
    CodeWithoutMapping,
    MappingWithMissingSpace,
    StaleMapping,
    DuplicateCode,
    MissingClaim,
    PolicyWithoutCode,
    LegacyFormatCode,
)


class RepairFailure(NamedTuple):
    kind: FindingKind
    subject: str  # a space id, a code, or several space ids joined by commas
    error: str

    def describe(self) -> str:
        return f"{self.kind.label} ({self.subject}): {self.error}"


def _no_findings() -> dict[FindingKind, list[Finding]]:
    return {kind: [] for kind in FindingKind}


@dataclass
class AuditReport:
    total_items: int = 0
    total_spaces: int = 0
    findings: dict[FindingKind, list[Finding]] = field(default_factory=_no_findings)
    repaired: dict[FindingKind, int] = field(default_factory=dict)  # items fixed, by kind
    repair_failures: list[RepairFailure] = field(default_factory=list)
    marked_legacy_codes_recorded: bool = False
    seconds: float = 0.0

    def add(self, finding: Finding) -> None:
        self.findings[finding.kind].append(finding)

    def of(self, kind: FindingKind) -> list[Finding]:
        return self.findings[kind]

    @property
    def problem_count(self) -> int:
        """The findings that are problems; warnings are not counted."""
        return sum(len(found) for kind, found in self.findings.items() if not kind.warning)

    @property
    def warning_count(self) -> int:
        return sum(len(found) for kind, found in self.findings.items() if kind.warning)

    @property
    def clean(self) -> bool:
        """No problems (there may be warnings)."""
        return self.problem_count == 0

    def counts(self) -> dict[str, int]:
        return {kind.value: len(found) for kind, found in self.findings.items()}

    # One list per kind, by the kind's name (docs/backfill.md).

    @property
    def spaces_without_code(self) -> list[str]:
        """The space ids: such a finding is nothing but its space."""
        return [finding.space_id for finding in self._typed(SpaceWithoutCode)]

    @property
    def codes_without_mapping(self) -> list[CodeWithoutMapping]:
        return self._typed(CodeWithoutMapping)

    @property
    def mappings_with_missing_space(self) -> list[MappingWithMissingSpace]:
        return self._typed(MappingWithMissingSpace)

    @property
    def stale_mappings(self) -> list[StaleMapping]:
        return self._typed(StaleMapping)

    @property
    def duplicate_codes(self) -> list[DuplicateCode]:
        return self._typed(DuplicateCode)

    @property
    def missing_claims(self) -> list[MissingClaim]:
        return self._typed(MissingClaim)

    @property
    def policies_without_code(self) -> list[PolicyWithoutCode]:
        return self._typed(PolicyWithoutCode)

    @property
    def legacy_format_codes(self) -> list[LegacyFormatCode]:
        return self._typed(LegacyFormatCode)

    def _typed(self, finding_type: type[F]) -> list[F]:
        return [finding for finding in self.findings[finding_type.kind] if isinstance(finding, finding_type)]
