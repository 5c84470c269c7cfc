"""Reads for the admin's space pages: a cursor-paged list, search, one space in full.

A page of the space list is a filtered Scan that stops as soon as it holds
one row more than it shows (to know whether a next page exists), or after a
fixed number of Scan requests, whichever comes first: a page never reads the
rest of the table. When the request budget runs out first, the page is short
and its cursor resumes the Scan where it stopped. The cursor is the Scan's
exclusive start key, encoded for a URL.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import DoesNotExist

from invites import codes
from invites.services import invite_code_resolve
from spaces import keys
from spaces.dynamodb import get_many, table_connection, translate_unreachable
from spaces.exceptions import InvalidInviteCode
from spaces.ids import is_valid_space_id
from spaces.models import CodeClaim, InviteMapping, Membership, Space
from spaces.selectors import space_members, spaces_by_id

# DynamoDB's Limit counts items *evaluated*, before the filter keeps only the
# space items (about one item in four in a typical table).
SCAN_ITEMS_PER_REQUEST = 1000
# The most Scan requests one page may make: a filter that matches few spaces
# gives a short page with a cursor instead of a long request.
MAX_SCAN_REQUESTS_PER_PAGE = 10
MAX_CURSOR_PART_LENGTH = 1024

ScanKey = dict[str, dict[str, str]]


@dataclass(frozen=True)
class SpacePage:
    spaces: list[Space]
    # Where the next page starts; None on the last page.
    next_cursor: str | None
    # True when the request budget ran out before the page was full.
    short: bool = False


def cursor_from_key(key: ScanKey) -> str:
    raw = f"{key['PK']['S']}\n{key['SK']['S']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def key_from_cursor(cursor: str) -> ScanKey | None:
    """The Scan start key in a cursor, or None when the text is not a cursor we made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    parts = raw.split("\n")
    if len(parts) != 2 or not all(0 < len(part) <= MAX_CURSOR_PART_LENGTH for part in parts):
        return None
    return {"PK": {"S": parts[0]}, "SK": {"S": parts[1]}}


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


def space_page(*, page_size: int, cursor: str | None = None, has_code: bool | None = None) -> SpacePage:
    """One page of spaces in Scan order, optionally only those with (or without) a code.

    Raises ValueError for a cursor this module did not make.
    """
    condition = Space.sk == keys.SPACE_METADATA_SK
    if has_code is True:
        condition &= Space.invite_code.exists()
    elif has_code is False:
        condition &= Space.invite_code.does_not_exist()
    start_key = key_from_cursor(cursor) if cursor else None
    if cursor and start_key is None:
        raise ValueError("not a page cursor")
    connection = table_connection()
    found: list[Space] = []
    for _request in range(MAX_SCAN_REQUESTS_PER_PAGE):
        with translate_unreachable():
            response: dict[str, Any] = connection.scan(
                filter_condition=condition, limit=SCAN_ITEMS_PER_REQUEST, exclusive_start_key=start_key
            )
        found.extend(Space.from_raw_data(raw) for raw in response.get("Items", []))
        start_key = response.get("LastEvaluatedKey")
        if len(found) > page_size:
            shown = found[:page_size]
            last = shown[-1]
            return SpacePage(shown, cursor_from_key({"PK": {"S": last.pk}, "SK": {"S": last.sk}}))
        if start_key is None:
            return SpacePage(found, None)
    return SpacePage(found, cursor_from_key(start_key), short=True)


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
    return spaces_by_id(valid_ids, consistent=True)


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


def space_by_id(*, space_id: str) -> Space | None:
    """The space, strongly consistent (it may be about to be written); None when there is none."""
    if not is_valid_space_id(space_id):
        return None
    with translate_unreachable():
        try:
            return Space.get(*Space.key(space_id), consistent_read=True)
        except DoesNotExist:
            return None


def space_detail(*, space_id: str) -> tuple[Space | None, list[Membership]]:
    """The space (strongly consistent) and its members; None when there is no such space."""
    space = space_by_id(space_id=space_id)
    if space is None:
        return None, []
    return space, space_members(space_id=space_id)
