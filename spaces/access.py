"""Who may do what in a space: pure rules over what the caller already read.

No DynamoDB here: the views read the space and the caller's membership in one
round trip (``space_with_membership``) and ask these functions, which raise
:class:`~spaces.exceptions.NotAllowed` with a message a user may see.
"""

from __future__ import annotations

from spaces.exceptions import NotAllowed
from spaces.models import ROLE_OWNER, ROLES_THAT_MANAGE_INVITES, Membership, Space

NOT_A_MEMBER = "You are not a member of this space"
ONLY_MANAGERS_REGENERATE = "Only owners and admins can regenerate invite codes"


def space_role_of(*, space: Space, membership: Membership | None, user_id: str) -> str | None:
    """The caller's role in the space, or None for a non-member.

    The membership item decides. A space whose ``owner_id`` names the caller
    but that lacks the owner's membership item (data the earlier system may
    have left) still treats the caller as its owner.
    """
    if membership is not None:
        return membership.role
    if space.owner_id and space.owner_id == user_id:
        return ROLE_OWNER
    return None


def space_require_view(*, space: Space, role: str | None) -> None:
    """Members see any space; others only public ones."""
    if role is None and not space.is_public:
        raise NotAllowed(NOT_A_MEMBER)


def space_require_member(*, role: str | None) -> None:
    if role is None:
        raise NotAllowed(NOT_A_MEMBER)


def space_require_invite_manager(*, role: str | None) -> None:
    if role not in ROLES_THAT_MANAGE_INVITES:
        raise NotAllowed(ONLY_MANAGERS_REGENERATE)
