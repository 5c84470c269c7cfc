"""Domain errors raised by the services; each front door translates them.

The API maps them to responses in one exception handler, the admin to
messages, the commands to exit statuses. Their text is safe to show a user.
"""

from __future__ import annotations

from spaces.dynamodb import DynamoUnavailable


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
    "DynamoUnavailable",
    "InvalidInviteCode",
    "InviteCodeUnavailable",
    "NoInviteCode",
    "NotAllowed",
    "SpaceNotFound",
]
