"""Request validation and response shapes of the API.

Serializers validate and rename; they never call DynamoDB. Response bodies
use camelCase (the guide's ``inviteCode``, ``spaceId``), except the invite
endpoints, whose snake_case bodies are the guide's contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import serializers

from invites.policies import MAX_EXPIRES_IN_SECONDS, MAX_USES, InvitePolicy, expires_at_iso, uses_of
from spaces.models import DEFAULT_SPACE_TYPE, ROLE_OWNER, ROLES, Membership, Space

# --- strict JSON fields ---------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """A JSON string, nothing else: DRF's CharField would also take numbers."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false``: DRF's BooleanField would also take "yes", 1, "on"."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# --- requests -------------------------------------------------------------------------


class SpaceCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, help_text="1 to 100 characters; surrounding white space is dropped.")
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    isPublic = StrictBooleanField(source="is_public", required=False, default=False)
    type = StrictCharField(source="space_type", max_length=50, required=False, default=DEFAULT_SPACE_TYPE)


class SpaceListQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(
        required=False,
        trim_whitespace=False,
        help_text="`nextCursor` of the previous page; omit for the first page.",
    )
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


class JoinSerializer(serializers.Serializer):
    # Any text: what a user typed, checked by the engine (case and surrounding
    # white space do not matter); a malformed code is "Invalid invite code".
    invite_code = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The code as the user typed it.")


# --- responses --------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaceForViewer:
    """A space as one caller sees it."""

    space: Space
    role: str | None
    member_count: int | None = None

    @property
    def is_owner(self) -> bool:
        return self.role == ROLE_OWNER

    @property
    def is_public(self) -> bool:
        return bool(self.space.is_public)

    @property
    def description(self) -> str:
        return self.space.description or ""

    @property
    def invite_code(self) -> str | None:
        # Members see the code (the guide's FAQ); nobody else ever does.
        return self.space.invite_code if self.role is not None else None

    @property
    def invite_policy(self) -> InvitePolicy | None:
        """The code's policy, for members of a space that has a code."""
        return InvitePolicy.of(self.space) if self.role is not None and self.space.invite_code else None

    @property
    def invite_expires_at(self) -> str | None:
        return expires_at_iso(self.invite_policy.expires_at) if self.invite_policy else None

    @property
    def invite_max_uses(self) -> int | None:
        return self.invite_policy.max_uses if self.invite_policy else None

    @property
    def invite_uses(self) -> int | None:
        return uses_of(self.space) if self.invite_policy else None

    @property
    def invite_paused(self) -> bool | None:
        return self.invite_policy.paused if self.invite_policy else None


class SpaceSummarySerializer(serializers.Serializer):
    spaceId = serializers.CharField(source="space.id")
    name = serializers.CharField(source="space.name", allow_null=True)
    description = serializers.CharField()
    type = serializers.CharField(source="space.space_type", allow_null=True)
    ownerId = serializers.CharField(source="space.owner_id", allow_null=True)
    createdAt = serializers.CharField(
        source="space.created_at", allow_null=True, help_text="ISO 8601, as stored (legacy items may lack an offset)."
    )
    updatedAt = serializers.CharField(source="space.updated_at", allow_null=True)
    isPublic = serializers.BooleanField(source="is_public")
    isOwner = serializers.BooleanField(source="is_owner")
    role = serializers.CharField(
        allow_null=True, help_text="The caller's role (owner, admin, member, viewer); null for a non-member."
    )
    inviteCode = serializers.CharField(
        source="invite_code", allow_null=True, help_text="Members only; null for others and for spaces without a code."
    )


class SpaceSerializer(SpaceSummarySerializer):
    memberCount = serializers.IntegerField(source="member_count")
    inviteExpiresAt = serializers.CharField(
        source="invite_expires_at", allow_null=True, help_text="Members only: when the code stops working (ISO 8601)."
    )
    inviteMaxUses = serializers.IntegerField(
        source="invite_max_uses", allow_null=True, help_text="Members only: joins the code allows; null: no limit."
    )
    inviteUses = serializers.IntegerField(
        source="invite_uses", allow_null=True, help_text="Members only: joins with the code while it has a limit."
    )
    invitePaused = serializers.BooleanField(
        source="invite_paused", allow_null=True, help_text="Members only: a paused code lets nobody in."
    )


class SpacePageSerializer(serializers.Serializer):
    results = SpaceSummarySerializer(many=True)
    nextCursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page."
    )


class MemberSerializer(serializers.Serializer):
    userId = serializers.CharField(source="user_id")
    role = serializers.CharField()
    joinedAt = serializers.CharField(source="joined_at", allow_null=True)


class MemberListSerializer(serializers.Serializer):
    results = MemberSerializer(many=True)


class InviteCodeSerializer(serializers.Serializer):
    """The guide's two fields."""

    invite_code = serializers.CharField()
    invite_url = serializers.CharField(help_text="`INVITE_URL_BASE` followed by the code; absolute when it is.")

    @staticmethod
    def for_code(code: str) -> dict[str, str]:
        return {"invite_code": code, "invite_url": f"{settings.INVITE_URL_BASE}{code}"}


class InviteCodeWithPolicySerializer(InviteCodeSerializer):
    """A code given a policy: the guide's two fields and the policy."""

    # Absent from the answer of a regeneration without a policy, which keeps the guide's two fields.
    expires_at = serializers.CharField(required=False, allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(required=False, allow_null=True, help_text="null: no limit.")

    @staticmethod
    def for_code(code: str, policy: InvitePolicy | None = None) -> dict[str, object]:
        policy = policy or InvitePolicy()
        return {
            **InviteCodeSerializer.for_code(code),
            "expires_at": expires_at_iso(policy.expires_at),
            "max_uses": policy.max_uses,
        }


class InviteCodeStateSerializer(InviteCodeWithPolicySerializer):
    """The current code, its policy and how it is doing (``PATCH .../invite``)."""

    expires_at = serializers.CharField(allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(allow_null=True, help_text="null: no limit.")
    uses = serializers.IntegerField(help_text="Joins with the code while it has a limit.")
    paused = serializers.BooleanField()

    @staticmethod
    def for_space(space: Space) -> dict[str, object]:
        return {
            **InviteCodeWithPolicySerializer.for_code(space.invite_code or "", InvitePolicy.of(space)),
            "uses": uses_of(space),
            "paused": InvitePolicy.of(space).paused,
        }


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: DRF's IntegerField would also take "5", 5.0 and true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _expires_in_field() -> StrictIntegerField:
    return StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=60,
        max_value=MAX_EXPIRES_IN_SECONDS,
        help_text=f"Seconds from now until the code stops working (60 to {MAX_EXPIRES_IN_SECONDS}); null: never.",
    )


def _max_uses_field() -> StrictIntegerField:
    return StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_USES,
        help_text=f"Joins the code allows (1 to {MAX_USES}); null: no limit.",
    )


class InvitePolicySerializer(serializers.Serializer):
    """Optional body of ``POST .../invite``: the new code's policy. No body: the guide's code."""

    expires_in = _expires_in_field()
    max_uses = _max_uses_field()


class InvitePolicyChangeSerializer(InvitePolicySerializer):
    """Body of ``PATCH .../invite``: what to change about the current code."""

    paused = StrictBooleanField(required=False, help_text="true stops the code until set back to false.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give at least one of expires_in, max_uses, paused.")
        return attrs


def members_in_display_order(members: list[Membership]) -> list[Membership]:
    """Owner first, then admins, members, viewers; each group by joining time."""
    rank = {role: index for index, role in enumerate(ROLES)}
    return sorted(members, key=lambda m: (rank.get(m.role, len(ROLES)), m.joined_at or "", m.user_id))


class InvitePreviewSerializer(serializers.Serializer):
    """What a code opens (the join page's "You are invited to ...")."""

    spaceId = serializers.CharField(source="space.id")
    name = serializers.CharField(source="space.name", allow_null=True)
    memberCount = serializers.IntegerField(source="member_count")
    isMember = serializers.BooleanField(source="is_member", help_text="True when the caller already belongs to it.")
