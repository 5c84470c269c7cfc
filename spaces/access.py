"""Who may do what in a space: pure rules over what the caller already read (no DynamoDB); they raise NotAllowed."""

from spaces.exceptions import NotAllowed
from spaces.models import ROLE_OWNER, ROLES_THAT_MANAGE_INVITES, Membership, Space

NOT_A_MEMBER = "You are not a member of this space"
ONLY_MANAGERS_REGENERATE = "Only owners and admins can regenerate invite codes"


def space_role_of(*, space: Space, membership: Membership | None, user_id: str) -> str | None:
    """The caller's role (None: not a member); ``owner_id`` counts without a membership item (legacy data)."""
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
