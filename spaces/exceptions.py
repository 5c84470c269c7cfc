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


class NoInviteCode(DomainError):
    """The space has no code whose policy could be changed (regenerate to give it one)."""

    def __init__(self, space_id: str) -> None:
        super().__init__(f"Space {space_id} has no invite code; regenerate one first")
        self.space_id = space_id


class InviteCodeUnavailable(DomainError):
    """No fresh code could be claimed within the attempt budget (practically never)."""


__all__ = [
    "AlreadyMember",
    "DomainError",
    "DynamoBusy",
    "DynamoUnavailable",
    "InvalidInviteCode",
    "InviteCodeUnavailable",
    "NoInviteCode",
    "NotAllowed",
    "SpaceNotFound",
]
