"""Validate and rename, never call DynamoDB; bodies are camelCase but the invite endpoints' (the guide's)."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from invites.policies import MAX_EXPIRES_IN_SECONDS, MAX_USES, InvitePolicy, expires_at_iso, uses_of
from spaces.models import DEFAULT_SPACE_TYPE, ROLE_OWNER, ROLES, Membership, Space


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


class SpaceCreateSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=100, help_text="1 to 100 characters; surrounding white space is dropped.")
    description = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    isPublic = StrictBooleanField(source="is_public", required=False, default=False)
    type = StrictCharField(source="space_type", max_length=50, required=False, default=DEFAULT_SPACE_TYPE)


class SpaceListQuerySerializer(serializers.Serializer[Any]):
    cursor = serializers.CharField(
        required=False, trim_whitespace=False, help_text="`nextCursor` of the previous page; omit for the first page."
    )
    limit = serializers.IntegerField(required=False, default=20, min_value=1, max_value=100)


class JoinSerializer(serializers.Serializer[Any]):
    # Any text: the engine normalises what a user typed; a malformed code is "Invalid invite code".
    invite_code = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The code as the user typed it.")


def space_for_viewer(space: Space, role: str | None, member_count: int | None = None) -> dict[str, Any]:
    """A space as one caller sees it: members see the code and its policy (the guide's FAQ), nobody else ever does."""
    policy = InvitePolicy.of(space) if role is not None and space.invite_code else None
    return {
        "space": space,
        "role": role,
        "member_count": member_count,
        "is_owner": role == ROLE_OWNER,
        "is_public": bool(space.is_public),
        "description": space.description or "",
        "invite_code": space.invite_code if role is not None else None,
        "invite_expires_at": expires_at_iso(policy.expires_at) if policy else None,
        "invite_max_uses": policy.max_uses if policy else None,
        "invite_uses": uses_of(space) if policy else None,
        "invite_paused": policy.paused if policy else None,
    }


class SpaceSummarySerializer(serializers.Serializer[Any]):
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


@extend_schema_serializer(many=False)  # a page object, which drf-spectacular would wrap in an array for a list
class SpacePageSerializer(serializers.Serializer[Any]):
    results = SpaceSummarySerializer(many=True)
    nextCursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null on the last page."
    )


class MemberSerializer(serializers.Serializer[Any]):
    userId = serializers.CharField(source="user_id")
    role = serializers.CharField()
    joinedAt = serializers.CharField(source="joined_at", allow_null=True)


class MemberListSerializer(serializers.Serializer[Any]):
    results = MemberSerializer(many=True)


class InviteCodeSerializer(serializers.Serializer[Any]):
    """The guide's two fields."""

    invite_code = serializers.CharField()
    invite_url = serializers.CharField(help_text="`INVITE_URL_BASE` followed by the code; absolute when it is.")


class InviteCodeWithPolicySerializer(InviteCodeSerializer):
    """A code given a policy: the guide's two fields and the policy."""

    # Absent from the answer of a regeneration without a policy, which keeps the guide's two fields.
    expires_at = serializers.CharField(required=False, allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(required=False, allow_null=True, help_text="null: no limit.")


class InviteCodeStateSerializer(InviteCodeWithPolicySerializer):
    """The current code, its policy and how it is doing (``PATCH .../invite``)."""

    expires_at = serializers.CharField(allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(allow_null=True, help_text="null: no limit.")
    uses = serializers.IntegerField(help_text="Joins with the code while it has a limit.")
    paused = serializers.BooleanField()


def invite_code_body(code: str, policy: InvitePolicy, uses: int | None = None) -> dict[str, object]:
    """A code's fields, for any of the three serializers above (each picks its own)."""
    return {
        "invite_code": code,
        "invite_url": f"{settings.INVITE_URL_BASE}{code}",
        "expires_at": expires_at_iso(policy.expires_at),
        "max_uses": policy.max_uses,
        "uses": uses,
        "paused": policy.paused,
    }


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: DRF's IntegerField would also take "5", 5.0 and true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class InvitePolicySerializer(serializers.Serializer[Any]):
    """Optional body of ``POST .../invite``: the new code's policy. No body: the guide's code."""

    expires_in = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=60,
        max_value=MAX_EXPIRES_IN_SECONDS,
        help_text=f"Seconds from now until the code stops working (60 to {MAX_EXPIRES_IN_SECONDS}); null: never.",
    )
    max_uses = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_USES,
        help_text=f"Joins the code allows (1 to {MAX_USES}); null: no limit.",
    )


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


class InvitePreviewSerializer(serializers.Serializer[Any]):
    """What a code opens (the join page's "You are invited to ...")."""

    spaceId = serializers.CharField(source="space.id")
    name = serializers.CharField(source="space.name", allow_null=True)
    memberCount = serializers.IntegerField(source="member_count")
    isMember = serializers.BooleanField(source="is_member", help_text="True when the caller already belongs to it.")
