"""Invite policies: when a space's one code stops working before it is replaced (expiry, use limit, pause).

The policy lives on the space item, so a join's transaction checks it as it writes the membership: of N concurrent
joins of a code limited to k uses, exactly k succeed. A new rule: a field, a reason in stopped_by, a join condition.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from pynamodb.attributes import Attribute
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from spaces.models import ROLE_MEMBER, Space

MAX_EXPIRES_IN_SECONDS = 30 * 24 * 3600  # Discord's longest is 7 days; a month is plenty
MAX_USES = 10_000


@dataclass(frozen=True)
class InvitePolicy:
    """What limits a code; all None/False is the guide's code that works until replaced."""

    expires_at: int | None = None  # epoch seconds
    max_uses: int | None = None
    paused: bool = False
    role: str = ROLE_MEMBER  # the role a join with the code gets

    @classmethod
    def of(cls, space: Space) -> Self:
        return cls(
            expires_at=int(space.invite_expires_at) if space.invite_expires_at is not None else None,
            max_uses=int(space.invite_max_uses) if space.invite_max_uses is not None else None,
            paused=bool(space.invite_paused),
            role=space.invite_role or ROLE_MEMBER,
        )

    @property
    def is_default(self) -> bool:
        return self.expires_at is None and self.max_uses is None and not self.paused and self.stored_role is None

    @property
    def stored_role(self) -> str | None:
        """``invite_role`` as stored: absent for the default, member."""
        return None if self.role == ROLE_MEMBER else self.role


def now_epoch() -> int:
    return int(time.time())


def expiry_in(seconds: int | None) -> int | None:
    """The moment ``seconds`` from now (epoch seconds); None: never."""
    return None if seconds is None else now_epoch() + int(seconds)


def expires_at_iso(expires_at: int | None) -> str | None:
    return datetime.fromtimestamp(expires_at, UTC).isoformat() if expires_at is not None else None


def uses_of(space: Space) -> int:
    return int(space.invite_uses or 0)


def stopped_by(space: Space, now: int) -> list[str]:
    """Why the space's code does not work now ("paused", "expired", "used up"); none: it works."""
    policy = InvitePolicy.of(space)
    expired = policy.expires_at is not None and policy.expires_at <= now
    used_up = policy.max_uses is not None and uses_of(space) >= policy.max_uses
    return [why for why, stops in (("paused", policy.paused), ("expired", expired), ("used up", used_up)) if stops]


def code_works(space: Space, now: int) -> bool:
    """Whether the space's code opens it now (the code itself is compared by the caller)."""
    return not stopped_by(space, now)


def join_requirements(space: Space, now: int) -> tuple[Condition, list[Action]]:
    """The condition a join's transaction puts on the space, and what it counts. The limit and role are the ones
    read: if an owner changes them meanwhile, the condition fails and the join decides again with the new ones."""
    policy = InvitePolicy.of(space)
    role_is = Space.invite_role.does_not_exist() if space.invite_role is None else Space.invite_role == policy.role
    not_paused = Space.invite_paused.does_not_exist() | (Space.invite_paused == False)  # noqa: E712
    condition = not_paused & (Space.invite_expires_at.does_not_exist() | (Space.invite_expires_at > now)) & role_is
    if policy.max_uses is None:
        return condition & Space.invite_max_uses.does_not_exist(), []
    within_limit = Space.invite_uses.does_not_exist() | (Space.invite_uses < policy.max_uses)
    return condition & (Space.invite_max_uses == policy.max_uses) & within_limit, [Space.invite_uses.add(1)]


def policy_actions(policy: InvitePolicy, *, reset_uses: bool) -> list[Action]:
    """The update actions that give the space's code ``policy`` (absent fields are removed)."""
    stored: list[tuple[Attribute[Any], Any]] = [
        (Space.invite_expires_at, policy.expires_at),
        (Space.invite_max_uses, policy.max_uses),
        (Space.invite_paused, policy.paused or None),
        (Space.invite_role, policy.stored_role),
    ]
    actions: list[Action] = [field.remove() if value is None else field.set(value) for field, value in stored]
    if reset_uses:
        actions.append(Space.invite_uses.remove())
    return actions
