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

from spaces.models import ROLE_OWNER, ROLES, Membership, Space

DEFAULT_SPACE_TYPE = "workspace"


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
    invite_code = serializers.CharField()
    invite_url = serializers.CharField()

    @staticmethod
    def for_code(code: str) -> dict[str, str]:
        return {"invite_code": code, "invite_url": f"{settings.INVITE_URL_BASE}{code}"}


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
