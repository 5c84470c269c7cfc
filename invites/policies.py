"""Invite policies: when a space's one code stops working before it is replaced (expiry, use limit, pause).

No policy is the guide's code that never expires. The policy lives on the space item, so a join's transaction
checks it as it writes the membership: of N concurrent joins of a code limited to k uses, exactly k succeed.
A new rule: an :class:`InvitePolicy` field, its test in :func:`code_works`, its condition in :func:`join_requirements`.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action

from spaces.models import Space

MAX_EXPIRES_IN_SECONDS = 30 * 24 * 3600  # Discord's longest is 7 days; a month is plenty
MAX_USES = 10_000


@dataclass(frozen=True)
class InvitePolicy:
    """What limits a code; all None/False is the guide's code that works until replaced."""

    expires_at: int | None = None  # epoch seconds
    max_uses: int | None = None
    paused: bool = False

    @classmethod
    def of(cls, space: Space) -> Self:
        return cls(
            expires_at=int(space.invite_expires_at) if space.invite_expires_at is not None else None,
            max_uses=int(space.invite_max_uses) if space.invite_max_uses is not None else None,
            paused=bool(space.invite_paused),
        )

    @property
    def is_default(self) -> bool:
        return self.expires_at is None and self.max_uses is None and not self.paused


def now_epoch() -> int:
    return int(time.time())


def expiry_in(seconds: int | None) -> int | None:
    """The moment ``seconds`` from now (epoch seconds); None: never."""
    return None if seconds is None else now_epoch() + int(seconds)


def expires_at_iso(expires_at: int | None) -> str | None:
    return datetime.fromtimestamp(expires_at, UTC).isoformat() if expires_at is not None else None


def uses_of(space: Space) -> int:
    return int(space.invite_uses or 0)


def code_works(space: Space, now: int) -> bool:
    """Whether the space's code opens it now (the code itself is compared by the caller)."""
    policy = InvitePolicy.of(space)
    if policy.paused:
        return False
    if policy.expires_at is not None and policy.expires_at <= now:
        return False
    return policy.max_uses is None or uses_of(space) < policy.max_uses


def join_requirements(space: Space, now: int) -> tuple[Condition, list[Action]]:
    """The condition a join's transaction puts on the space, and what it counts.

    The limit is the one read: if an owner changes it meanwhile, the
    condition fails and the join decides again with the new one.
    """
    condition = (Space.invite_paused.does_not_exist() | (Space.invite_paused == False)) & (  # noqa: E712
        Space.invite_expires_at.does_not_exist() | (Space.invite_expires_at > now)
    )
    policy = InvitePolicy.of(space)
    if policy.max_uses is None:
        return condition & Space.invite_max_uses.does_not_exist(), []
    within_limit = Space.invite_uses.does_not_exist() | (Space.invite_uses < policy.max_uses)
    return condition & (Space.invite_max_uses == policy.max_uses) & within_limit, [Space.invite_uses.add(1)]


def policy_actions(policy: InvitePolicy, *, reset_uses: bool) -> list[Action]:
    """The update actions that give the space's code ``policy`` (absent fields are removed)."""
    actions: list[Action] = [
        Space.invite_expires_at.set(policy.expires_at)
        if policy.expires_at is not None
        else Space.invite_expires_at.remove(),
        Space.invite_max_uses.set(policy.max_uses) if policy.max_uses is not None else Space.invite_max_uses.remove(),
        Space.invite_paused.set(True) if policy.paused else Space.invite_paused.remove(),
    ]
    if reset_uses:
        actions.append(Space.invite_uses.remove())
    return actions
