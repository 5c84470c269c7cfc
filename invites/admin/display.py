"""How the space pages show stored values: dates as the rest of the admin does, the type, the invite policy.

DynamoDB keeps timestamps as ISO 8601 strings (``created_at``) or epoch
seconds (``invite_expires_at``). The admin shows a date in the site's
date and time formats and time zone, as Django shows a ``DateTimeField``,
with the stored value in a tooltip (``<time title="...">``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from invites.policies import InvitePolicy, now_epoch, uses_of
from spaces.models import DEFAULT_SPACE_TYPE, Space


@dataclass(frozen=True)
class Moment:
    """A stored timestamp; renders in a template (``{{ moment }}``) as ``<time>``, the stored value as tooltip."""

    stored: str
    value: datetime | None

    @classmethod
    def of(cls, stored: str | None) -> Moment:
        """An ISO timestamp as stored; one without a zone is UTC (the earlier system wrote them so)."""
        if not stored:
            return cls("", None)
        try:
            value = datetime.fromisoformat(stored)
        except ValueError:
            return cls(stored, None)  # shown as it is
        return cls(stored, value if value.tzinfo else value.replace(tzinfo=UTC))

    @classmethod
    def of_epoch(cls, seconds: int | None) -> Moment:
        if seconds is None:
            return cls("", None)
        value = datetime.fromtimestamp(seconds, UTC)
        return cls(value.isoformat(), value)

    def __bool__(self) -> bool:
        return bool(self.stored)

    def __str__(self) -> SafeString:
        if self.value is None:
            return format_html("{}", self.stored)
        # DATETIME_FORMAT's two halves ("Jan. 15, 2024, 10:30 a.m." in en-us), each kept on one line
        # (the admin's "nowrap"), so that a narrow column breaks between the date and the time only.
        local = timezone.localtime(self.value)
        return format_html(
            '<time datetime="{}" title="{}"><span class="nowrap">{},</span> <span class="nowrap">{}</span></time>',
            self.value.isoformat(),
            self.stored,
            date_format(local, "DATE_FORMAT"),
            time_format(local, "TIME_FORMAT"),
        )

    __html__ = __str__


def space_type(space: Space) -> str:
    return space.space_type or DEFAULT_SPACE_TYPE


@dataclass(frozen=True)
class PolicyDisplay:
    """A code's invite policy as the pages show it: the fields, whether the code works now, and why not."""

    policy: InvitePolicy
    uses: int
    expires: Moment
    expired: bool
    used_up: bool

    @classmethod
    def of(cls, space: Space, now: int | None = None) -> PolicyDisplay:
        moment = now_epoch() if now is None else now
        policy = InvitePolicy.of(space)
        uses = uses_of(space)
        return cls(
            policy=policy,
            uses=uses,
            expires=Moment.of_epoch(policy.expires_at),
            expired=policy.expires_at is not None and policy.expires_at <= moment,
            used_up=policy.max_uses is not None and uses >= policy.max_uses,
        )

    @property
    def stopped_by(self) -> list[str]:
        """Why the code does not work now (``invites.policies.code_works``); empty when it works."""
        reasons = [("paused", self.policy.paused), ("expired", self.expired), ("used up", self.used_up)]
        return [reason for reason, applies in reasons if applies]

    @property
    def summary(self) -> SafeString:
        """A compact note for the list, one line per rule; empty for the guide's code (no expiry, no limit,
        not paused)."""
        parts = []
        if self.policy.paused:
            parts.append(mark_safe('<span class="invite-stopped">paused</span>'))  # a constant
        if self.policy.expires_at is not None:
            template = '<span class="invite-stopped">expired {}</span>' if self.expired else "expires {}"
            parts.append(format_html(template, self.expires))
        if self.policy.max_uses is not None:
            template = '<span class="invite-stopped">{} of {} uses</span>' if self.used_up else "{} of {} uses"
            parts.append(format_html(template, self.uses, self.policy.max_uses))
        return format_html_join("", "<div>{}</div>", ((part,) for part in parts))
