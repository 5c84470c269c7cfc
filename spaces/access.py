"""Who may do what in a space: pure rules over what the caller already read (no DynamoDB); they raise NotAllowed."""

from spaces.exceptions import NotAllowed
from spaces.models import ROLE_ADMIN, ROLE_MEMBER, ROLE_OWNER, ROLE_VIEWER, ROLES_THAT_MANAGE_INVITES, Membership, Space

NOT_A_MEMBER = "You are not a member of this space"
# Whom each role may remove and block (None: someone who is not a member).
MANAGED_BY: dict[str | None, frozenset[str | None]] = {
    ROLE_OWNER: frozenset({ROLE_ADMIN, ROLE_MEMBER, ROLE_VIEWER, None}),
    ROLE_ADMIN: frozenset({ROLE_MEMBER, ROLE_VIEWER, None}),
}


def space_role_of(*, space: Space, membership: Membership | None, user_id: str) -> str | None:
    """The caller's role (None: not a member); ``owner_id`` counts without a membership item (legacy data)."""
    if membership is not None:
        return membership.role
    return ROLE_OWNER if space.owner_id and space.owner_id == user_id else None


def space_require_view(*, space: Space, role: str | None) -> None:
    """Members see any space; others only public ones."""
    if role is None and not space.is_public:
        raise NotAllowed(NOT_A_MEMBER)


def space_require_member(*, role: str | None) -> None:
    if role is None:
        raise NotAllowed(NOT_A_MEMBER)


def space_require_invite_manager(*, role: str | None) -> None:
    if role not in ROLES_THAT_MANAGE_INVITES:
        raise NotAllowed("Only owners and admins can regenerate invite codes")


def space_require_manager_of(*, role: str | None, target_role: str | None) -> None:
    """Owners remove and block anyone but themselves; admins members, viewers and non-members (None)."""
    if role not in MANAGED_BY:
        raise NotAllowed("Only owners and admins can manage the people of a space")
    if target_role not in MANAGED_BY[role]:
        raise NotAllowed(f"An {role} cannot remove or block an {target_role}")


def space_require_owner(*, role: str | None) -> None:
    if role != ROLE_OWNER:
        raise NotAllowed("Only the owner can change roles or hand ownership over")
