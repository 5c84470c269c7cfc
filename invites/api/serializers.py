"""Response shape of the invite preview (the join page's "You are invited to ...")."""

from __future__ import annotations

from rest_framework import serializers


class InvitePreviewSerializer(serializers.Serializer):
    spaceId = serializers.CharField(source="space.id")
    name = serializers.CharField(source="space.name", allow_null=True)
    memberCount = serializers.IntegerField(source="member_count")
    isMember = serializers.BooleanField(source="is_member", help_text="True when the caller already belongs to it.")
