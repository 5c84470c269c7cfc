"""Whole-table checks of the invite-code invariants, written independently of the engine."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from spaces import keys
from spaces.dynamodb import botocore_client, table_name


def scan_all(client: Any = None) -> list[dict[str, str]]:
    """Every item of the table, strongly consistent; through ``client`` when given (a client of the test's own)."""
    client = client or botocore_client()
    items: list[dict[str, str]] = []
    kwargs: dict[str, object] = {"TableName": table_name(), "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        for raw in page["Items"]:
            items.append({name: next(iter(value.values())) for name, value in raw.items()})
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stored_code(space_id: str) -> str | None:
    """The code the space holds now (strongly consistent)."""
    from spaces.models import Space

    return Space.get(*Space.key(space_id), consistent_read=True).invite_code


def mapped_codes(space_id: str) -> set[str]:
    """The codes of every ``INVITE#`` mapping that names the space."""
    return {
        item["PK"][len(keys.INVITE_PREFIX) :]
        for item in scan_all()
        if item["PK"].startswith(keys.INVITE_PREFIX) and item["SK"] == keys.invite_sk(space_id)
    }


def resolves_to(code: str | None) -> str | None:
    """The id of the space a typed code opens now, or None when it opens none."""
    from invites.joining import invite_code_resolve
    from spaces.exceptions import InvalidInviteCode

    try:
        space, _ = invite_code_resolve(typed_code=code or "")  # no code opens nothing
    except InvalidInviteCode:
        return None
    return space.id


def invariant_violations(*, require_codes: bool = False, client: Any = None) -> list[str]:
    """Everything wrong with the table, as sentences; empty when consistent.

    * codes are unique across spaces (case-insensitively);
    * each space's code is claimed by that space and has exactly one mapping;
    * a space has no INVITE# mapping other than its current code's;
    * no mapping points at a missing space.
    """
    items = scan_all(client)
    spaces = {i["id"]: i for i in items if i["PK"].startswith(keys.SPACE_PREFIX) and i["SK"] == "METADATA"}
    claims = {i["PK"][len(keys.CODE_PREFIX) :]: i for i in items if i["PK"].startswith(keys.CODE_PREFIX)}
    mappings_by_space: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    for item in items:
        if item["PK"].startswith(keys.INVITE_PREFIX):
            code = item["PK"][len(keys.INVITE_PREFIX) :]
            space_id = item["SK"][len(keys.SPACE_PREFIX) :]
            if space_id not in spaces:
                problems.append(f"mapping {code} points at missing space {space_id}")
            mappings_by_space[space_id].append(code)

    holders: dict[str, list[str]] = defaultdict(list)
    for space_id, space in spaces.items():
        code = space.get("invite_code", "")
        if not code:
            if require_codes:
                problems.append(f"space {space_id} has no code")
            if mappings_by_space.get(space_id):
                problems.append(f"space {space_id} has no code but mappings {mappings_by_space[space_id]}")
            continue
        holders[code.upper()].append(space_id)
        claim = claims.get(code.upper())
        if claim is None or claim["space_id"] != space_id:
            problems.append(f"space {space_id} code {code} is not claimed by it ({claim})")
        if mappings_by_space.get(space_id, []) != [code]:
            problems.append(f"space {space_id} code {code} has mappings {mappings_by_space.get(space_id, [])}")
    for code, holder_ids in holders.items():
        if len(holder_ids) > 1:
            problems.append(f"code {code} is held by {holder_ids}")
    return problems
