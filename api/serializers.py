"""Validate and rename, never call DynamoDB; bodies are camelCase but the invite endpoints' (the guide's)."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from invites.policies import MAX_EXPIRES_IN_SECONDS, MAX_USES, InvitePolicy, expires_at_iso, uses_of
from spaces.models import DEFAULT_SPACE_TYPE, ROLE_OWNER, ROLES_CODES_GRANT, ROLES_OWNERS_GIVE, Space


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


class PeopleQuerySerializer(SpaceListQuerySerializer):
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)


class MemberListQuerySerializer(PeopleQuerySerializer):
    code = serializers.CharField(required=False, trim_whitespace=False, help_text="Those who joined with it.")


class JoinSerializer(serializers.Serializer[Any]):
    # Any text: the engine normalises what a user typed; a malformed code is "Invalid invite code".
    invite_code = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The code as the user typed it.")


def space_for_viewer(space: Space, role: str | None, member_count: int | None = None) -> dict[str, Any]:
    """A space as one caller sees it: members see the code and its policy (the guide's FAQ), nobody else ever does."""
    code = space.invite_code if role is not None else None
    policy = invite_code_body(code, InvitePolicy.of(space), uses_of(space)) if code else {}
    shown = {f"invite_{name}": policy.get(name) for name in ("expires_at", "max_uses", "uses", "paused", "role")}
    return shown | {
        "space": space,
        "role": role,
        "member_count": member_count,
        "is_owner": role == ROLE_OWNER,
        "is_public": bool(space.is_public),
        "description": space.description or "",
        "invite_code": code,
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


def _members_only(field: type[serializers.Field[Any, Any, Any, Any]], source: str, text: str) -> Any:
    return field(source=source, allow_null=True, help_text=f"Members only: {text}")


class SpaceSerializer(SpaceSummarySerializer):
    memberCount = serializers.IntegerField(source="member_count")
    inviteExpiresAt = _members_only(
        serializers.CharField, "invite_expires_at", "when the code stops working (ISO 8601)."
    )
    inviteMaxUses = _members_only(serializers.IntegerField, "invite_max_uses", "joins the code allows; null: no limit.")
    inviteUses = _members_only(serializers.IntegerField, "invite_uses", "joins with the code while it has a limit.")
    invitePaused = _members_only(serializers.BooleanField, "invite_paused", "a paused code lets nobody in.")
    inviteRole = _members_only(serializers.CharField, "invite_role", "the role a join with the code gets.")


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


class MemberWithProvenanceSerializer(MemberSerializer):
    """Owners and admins also see how each came in: the code and who set it (null: unknown)."""

    inviteCode = serializers.CharField(source="joined_with", allow_null=True, required=False)
    codeSetBy = serializers.CharField(source="code_set_by", allow_null=True, required=False)


@extend_schema_serializer(many=False)
class MemberPageSerializer(serializers.Serializer[Any]):
    results = MemberWithProvenanceSerializer(many=True)
    nextCursor = serializers.CharField(allow_null=True, help_text="Pass as `cursor` for the next page.")


class BlockSerializer(serializers.Serializer[Any]):
    userId = serializers.CharField(source="user_id")
    blockedAt = serializers.CharField(source="blocked_at", allow_null=True)
    blockedBy = serializers.CharField(source="blocked_by", allow_null=True)


@extend_schema_serializer(many=False)
class BlockPageSerializer(MemberPageSerializer):
    results = BlockSerializer(many=True)  # type: ignore[assignment]


class RoleSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=ROLES_OWNERS_GIVE)


class OwnerSerializer(serializers.Serializer[Any]):
    userId = StrictCharField(source="user_id", max_length=64, help_text="A member, who becomes the owner.")


class CleanupSerializer(serializers.Serializer[Any]):
    code = StrictCharField(trim_whitespace=False)
    block = StrictBooleanField(required=False, default=False)


class CleanupReportSerializer(serializers.Serializer[Any]):
    removed = serializers.IntegerField()
    blocked = serializers.IntegerField()
    skipped = serializers.IntegerField()
    complete = serializers.BooleanField()


class InviteCodeSerializer(serializers.Serializer[Any]):
    """The guide's two fields."""

    invite_code = serializers.CharField()
    invite_url = serializers.CharField(help_text="`INVITE_URL_BASE` followed by the code; absolute when it is.")


class InviteCodeWithPolicySerializer(InviteCodeSerializer):
    """A code given a policy: the guide's two fields and the policy."""

    # Absent from the answer of a regeneration without a policy, which keeps the guide's two fields.
    expires_at = serializers.CharField(required=False, allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(required=False, allow_null=True, help_text="null: no limit.")
    role = serializers.CharField(required=False, help_text="The role a join with the code gets.")


class InviteCodeStateSerializer(InviteCodeWithPolicySerializer):
    """The current code, its policy and how it is doing (``PATCH .../invite``)."""

    expires_at = serializers.CharField(allow_null=True, help_text="ISO 8601; null: never.")
    max_uses = serializers.IntegerField(allow_null=True, help_text="null: no limit.")
    uses = serializers.IntegerField(help_text="Joins with the code while it has a limit.")
    paused = serializers.BooleanField()


def invite_code_body(code: str, policy: InvitePolicy, uses: int | None = None) -> dict[str, Any]:
    """A code's fields, for any of the three serializers above (each picks its own)."""
    body = dict(invite_code=code, invite_url=f"{settings.INVITE_URL_BASE}{code}", uses=uses, role=policy.role)
    return body | dict(expires_at=expires_at_iso(policy.expires_at), max_uses=policy.max_uses, paused=policy.paused)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing else: DRF's IntegerField would also take "5", 5.0 and true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def _bounded(low: int, high: int, text: str, null: str) -> StrictIntegerField:
    help_text = f"{text} ({low} to {high}); null: {null}."
    return StrictIntegerField(required=False, allow_null=True, min_value=low, max_value=high, help_text=help_text)


class InvitePolicySerializer(serializers.Serializer[Any]):
    """Optional body of ``POST .../invite``: the new code's policy. No body: the guide's code."""

    expires_in = _bounded(60, MAX_EXPIRES_IN_SECONDS, "Seconds from now until the code stops working", "never")
    max_uses = _bounded(1, MAX_USES, "Joins the code allows", "no limit")
    role = serializers.ChoiceField(choices=ROLES_CODES_GRANT, required=False, help_text="What a join gets (member).")


class InvitePolicyChangeSerializer(InvitePolicySerializer):
    """Body of ``PATCH .../invite``: what to change about the current code."""

    paused = StrictBooleanField(required=False, help_text="true stops the code until set back to false.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("Give at least one of expires_in, max_uses, paused, role.")
        return attrs


class InvitePreviewSerializer(serializers.Serializer[Any]):
    """What a code opens (the join page's "You are invited to ...")."""

    spaceId = serializers.CharField(source="space.id")
    name = serializers.CharField(source="space.name", allow_null=True)
    memberCount = serializers.IntegerField(source="member_count")
    isMember = serializers.BooleanField(source="is_member", help_text="True when the caller already belongs to it.")
