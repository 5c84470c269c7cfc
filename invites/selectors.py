"""Reads for the admin's space pages. A page of the list never reads the whole table: its filtered Scan stops once it
holds one row more than it shows, or after ``MAX_SCAN_REQUESTS_PER_PAGE`` requests (a short page)."""

import base64
from contextlib import suppress
from typing import Any, NamedTuple

from pynamodb.exceptions import DoesNotExist

from invites import codes
from invites.joining import invite_code_resolve
from spaces import keys
from spaces.dynamodb import get_many, table_connection, translate_unreachable
from spaces.exceptions import InvalidInviteCode
from spaces.ids import is_valid_space_id
from spaces.models import CodeClaim, InviteMapping, Space
from spaces.selectors import spaces_by_id

# Limit counts the items *evaluated*, before the filter keeps the spaces (about one item in four).
SCAN_ITEMS_PER_REQUEST = 1000
MAX_SCAN_REQUESTS_PER_PAGE = 10


class SpacePage(NamedTuple):
    spaces: list[Space]
    next_cursor: str | None  # None on the last page
    short: bool = False  # the request budget ran out before the page was full


def cursor_from_key(pk: str, sk: str) -> str:
    return base64.urlsafe_b64encode(f"{pk}\n{sk}".encode()).decode().rstrip("=")


def key_from_cursor(cursor: str) -> dict[str, Any] | None:
    """The Scan start key in a cursor; None when the text is not a cursor we made."""
    try:  # binascii.Error and UnicodeDecodeError are ValueErrors
        pk, sk = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("\n")
    except ValueError:
        return None
    return {"PK": {"S": pk}, "SK": {"S": sk}} if pk and sk and len(pk + sk) <= 1024 else None


def space_page(*, page_size: int, cursor: str | None = None, has_code: bool | None = None) -> SpacePage:
    condition = Space.sk == keys.SPACE_METADATA_SK
    if has_code is not None:
        condition &= Space.invite_code.exists() if has_code else Space.invite_code.does_not_exist()
    start_key: Any = key_from_cursor(cursor) if cursor else None  # a key map (PynamoDB's scan types it str)
    found: list[Space] = []
    for _request in range(MAX_SCAN_REQUESTS_PER_PAGE):
        with translate_unreachable():
            response: dict[str, Any] = table_connection().scan(
                filter_condition=condition, limit=SCAN_ITEMS_PER_REQUEST, exclusive_start_key=start_key
            )
        found += [Space.from_raw_data(raw) for raw in response.get("Items", [])]
        start_key = response.get("LastEvaluatedKey")
        if len(found) > page_size:
            last = found[page_size - 1]
            return SpacePage(found[:page_size], cursor_from_key(last.pk, last.sk))
        if start_key is None:
            return SpacePage(found, None)
    return SpacePage(found, cursor_from_key(start_key["PK"]["S"], start_key["SK"]["S"]), short=True)


def space_search(*, query: str) -> tuple[list[Space], str]:
    """The space with this exact id, or the one an invite code opens; else none and why, in words for staff."""
    if is_valid_space_id(query) and (found := spaces_by_id([query])):
        return list(found.values()), ""
    try:
        code = codes.normalize_typed_code(query)
    except codes.MalformedCode:
        return [], f"No space has the id {query!r}, and it cannot be an invite code."
    with suppress(InvalidInviteCode):
        return [invite_code_resolve(typed_code=code)[0]], ""
    with translate_unreachable():
        try:
            claim = CodeClaim.get(*CodeClaim.key(code), consistent_read=True)
        except DoesNotExist:
            return [], f"No space has the id or the invite code {code!r}."
    held = f"it was issued to space {claim.space_id}, which holds another code now (or was deleted)."
    return [], f"The invite code {claim.code} no longer works: {held}"


def code_problems(*, space: Space) -> list[str]:
    """What is wrong with the claim and the ``INVITE#`` mapping of the space's code (one BatchGetItem)."""
    code = space.invite_code
    if not code:
        return []
    mapping_key, claim_key = InviteMapping.key(code, space.id), CodeClaim.key(code)
    with translate_unreachable():
        found = get_many([mapping_key, claim_key])
    claimed_by = CodeClaim.from_raw_data(found[claim_key]).space_id if claim_key in found else None
    problems = [] if mapping_key in found else [f"the INVITE#{code} mapping of this space is missing"]
    if claimed_by is None:
        problems.append(f"the code {code} is not claimed (CODE# item missing)")
    elif claimed_by != space.id:
        problems.append(f"the code {code} is claimed by another space, {claimed_by}")
    return problems
