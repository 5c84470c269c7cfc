"""Reads for the admin's space pages: a cursor-paged list, search, one space in full.

A page of the space list is one filtered Scan that stops as soon as it holds
one row more than it shows (to know whether a next page exists): it never
reads the rest of the table. The cursor is the id of the last space shown,
which is the Scan's exclusive start key (``SPACE#<id>`` / ``METADATA``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pynamodb.exceptions import DoesNotExist

from invites import codes
from invites.services import invite_code_resolve
from spaces import keys
from spaces.dynamodb import get_many, translate_unreachable
from spaces.exceptions import InvalidInviteCode
from spaces.ids import is_valid_space_id
from spaces.models import CodeClaim, InviteMapping, Membership, Space
from spaces.selectors import space_members

# DynamoDB's Limit counts items *evaluated*, before the filter keeps only the
# space items; reading a few hundred per request keeps the number of round
# trips per page low without pulling a large part of the table.
SCAN_ITEMS_PER_REQUEST = 400


@dataclass(frozen=True)
class SpacePage:
    spaces: list[Space]
    # Id of the last space shown when more may follow; None on the last page.
    next_cursor: str | None


@dataclass(frozen=True)
class SpaceSearchResult:
    spaces: list[Space]
    # Why nothing (or something unexpected) was found, in words for staff.
    note: str = ""


@dataclass(frozen=True)
class CodeConsistency:
    """Whether the items behind a space's current code are in place."""

    code: str | None
    mapping_present: bool = False
    claimed_by: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.problems


def space_page(*, page_size: int, after: str | None = None, has_code: bool | None = None) -> SpacePage:
    """One page of spaces in Scan order, optionally only those with (or without) a code."""
    condition = Space.sk == keys.SPACE_METADATA_SK
    if has_code is True:
        condition &= Space.invite_code.exists()
    elif has_code is False:
        condition &= Space.invite_code.does_not_exist()
    start_key = None
    if after:
        pk, sk = Space.key(after)
        start_key = {"PK": {"S": pk}, "SK": {"S": sk}}
    with translate_unreachable():
        found = list(
            Space.scan(
                filter_condition=condition,
                limit=page_size + 1,
                last_evaluated_key=start_key,
                page_size=SCAN_ITEMS_PER_REQUEST,
            )
        )
    shown = found[:page_size]
    has_more = len(found) > page_size
    return SpacePage(spaces=shown, next_cursor=shown[-1].id if has_more and shown else None)


def space_search(*, query: str) -> SpaceSearchResult:
    """Find a space by its exact id or by an invite code (current, or one it held before)."""
    text = query.strip()
    if not text:
        return SpaceSearchResult(spaces=[])
    if is_valid_space_id(text):
        with translate_unreachable():
            try:
                return SpaceSearchResult(spaces=[Space.get(*Space.key(text), consistent_read=True)])
            except DoesNotExist:
                pass
    try:
        space, _membership = invite_code_resolve(typed_code=text)
    except InvalidInviteCode:
        return SpaceSearchResult(spaces=[], note=_why_code_opens_nothing(text))
    return SpaceSearchResult(spaces=[space])


def _why_code_opens_nothing(text: str) -> str:
    try:
        code = codes.normalize_typed_code(text)
    except codes.MalformedCode:
        return f"No space has the id {text!r}, and it cannot be an invite code."
    with translate_unreachable():
        try:
            claim = CodeClaim.get(*CodeClaim.key(code), consistent_read=True)
        except DoesNotExist:
            return f"No space has the id or the invite code {code!r}."
    return (
        f"The invite code {claim.code} no longer works: it was issued to space {claim.space_id}, "
        "which holds another code now (or was deleted)."
    )


def spaces_for_ids(*, space_ids: list[str]) -> dict[str, Space]:
    """Spaces for the given ids, strongly consistent (they are about to be written)."""
    valid_ids = [space_id for space_id in dict.fromkeys(space_ids) if is_valid_space_id(space_id)]
    with translate_unreachable():
        found = get_many([Space.key(space_id) for space_id in valid_ids], consistent=True)
    spaces = (Space.from_raw_data(raw) for raw in found.values())
    return {space.id: space for space in spaces}


def invite_code_consistency(*, space: Space) -> CodeConsistency:
    """Check the space's current code against its claim and ``INVITE#`` mapping: one BatchGetItem."""
    code = space.invite_code
    if not code:
        return CodeConsistency(code=None)
    mapping_key = InviteMapping.key(code, space.id)
    claim_key = CodeClaim.key(code)
    with translate_unreachable():
        found = get_many([mapping_key, claim_key])
    raw_claim = found.get(claim_key)
    claimed_by = CodeClaim.from_raw_data(raw_claim).space_id if raw_claim else None
    problems = []
    if mapping_key not in found:
        problems.append(f"the INVITE#{code} mapping of this space is missing")
    if claimed_by is None:
        problems.append(f"the code {code} is not claimed (CODE# item missing)")
    elif claimed_by != space.id:
        problems.append(f"the code {code} is claimed by another space, {claimed_by}")
    return CodeConsistency(code=code, mapping_present=mapping_key in found, claimed_by=claimed_by, problems=problems)


def space_detail(*, space_id: str) -> tuple[Space | None, list[Membership]]:
    """The space (strongly consistent) and its members; None when there is no such space."""
    if not is_valid_space_id(space_id):
        return None, []
    with translate_unreachable():
        try:
            space = Space.get(*Space.key(space_id), consistent_read=True)
        except DoesNotExist:
            return None, []
    return space, space_members(space_id=space_id)
