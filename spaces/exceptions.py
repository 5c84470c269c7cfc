"""Errors the services raise; each front door translates them. Their text is safe to show a user."""


class DynamoUnavailable(Exception):
    """DynamoDB (or the table) cannot be reached; the caller should give up quickly."""


class DynamoBusy(DynamoUnavailable):
    """DynamoDB kept cancelling a transaction for conflicts or throttling; try again later."""


class DomainError(Exception):
    """Base of the errors a user can cause or be told about."""


class SpaceNotFound(DomainError):
    def __init__(self, space_id: str) -> None:
        super().__init__(f"Space {space_id} not found")
        self.space_id = space_id


class NotAllowed(DomainError):
    """The caller's role in the space does not allow the operation."""


class InvalidInviteCode(DomainError):
    def __init__(self) -> None:
        super().__init__("Invalid invite code")


class AlreadyMember(DomainError):
    def __init__(self) -> None:
        super().__init__("You are already a member of this space")


class Blocked(InvalidInviteCode):
    """The user is blocked from the space the code opens (the join page shows it as an invalid code)."""

    def __str__(self) -> str:
        return "You cannot join this space"


class NotAMember(DomainError):
    def __init__(self, user_id: str, *, blocked: bool = False) -> None:
        super().__init__(f"User {user_id} is not {'blocked in' if blocked else 'a member of'} this space")


class MemberConflict(DomainError):
    """The change contradicts the space as it is (the owner leaving, a role changed meanwhile)."""


class InvalidMemberChange(DomainError):
    """A change that can never apply (your own id where it is not allowed, an unknown role)."""


class NoInviteCode(DomainError):
    """The space has no code whose policy could be changed (regenerate to give it one)."""

    def __init__(self, space_id: str) -> None:
        super().__init__(f"Space {space_id} has no invite code; regenerate one first")
        self.space_id = space_id


class InviteCodeUnavailable(DomainError):
    """No fresh code could be claimed within the attempt budget (practically never)."""
