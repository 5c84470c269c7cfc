"""Writes to spaces and memberships (the invite-code engine is in invites.services)."""

from __future__ import annotations

from typing import Any

from invites.janitor import janitor
from invites.services import invite_code_claim_new
from spaces.dynamodb import translate_unreachable, write_batch
from spaces.ids import new_space_id
from spaces.models import ROLE_OWNER, InviteMapping, Membership, Space, utc_now_iso


def space_create(
    *,
    owner_id: str,
    name: str,
    description: str = "",
    is_public: bool = False,
    space_type: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Space:
    """Create a space with its owner membership and invite code, all or nothing.

    The space item is written last and is the commit point: until it exists,
    the claim, the mapping and the membership lead nowhere (resolve and the
    selectors skip what has no space); on a failure the mapping goes to the
    janitor, which removes it unless the space turns out to exist.
    """
    space_id = new_space_id()
    now = utc_now_iso()
    with translate_unreachable():
        code = invite_code_claim_new(space_id=space_id)
        space = Space.build(
            space_id,
            name=name,
            description=description,
            space_type=space_type,
            is_public=is_public,
            owner_id=owner_id,
            invite_code=code,
            created_at=now,
            updated_at=now,
            metadata=metadata or None,
        )
        try:
            write_batch(
                puts=[
                    InviteMapping.build(code, space_id, now),
                    Membership.build(space_id, owner_id, ROLE_OWNER, now),
                ]
            )
            space.save(condition=Space.pk.does_not_exist())
        except Exception:
            janitor.remove_unless_held(space_id, [code])
            raise
    return space
