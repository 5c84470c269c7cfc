"""``GET /api/invites/<code>``: what a code opens, for the join page.

Throttled per user like joining, since both answer "is this a code?".
A malformed code is a 400 (no key is built from it); an unknown or stale one
is a 404. Round trips: the claim, and the space with the caller's membership
(the member count is on the space).
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from invites import codes
from invites.api.serializers import InvitePreviewSerializer
from invites.services import invite_code_resolve
from lifestyle_spaces.api_schema import THROTTLED, UNAUTHENTICATED, UNAVAILABLE, error, retry_after
from spaces.api.views import caller_id
from spaces.exceptions import InvalidInviteCode
from spaces.models import Space
from spaces.selectors import space_member_count

UNKNOWN_CODE = "Invite code not found"


@dataclass(frozen=True)
class InvitePreview:
    space: Space
    member_count: int
    is_member: bool


class InvitePreviewView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invite_preview"

    @extend_schema(
        summary="Preview the space an invite code opens",
        parameters=[
            OpenApiParameter(
                "code",
                str,
                OpenApiParameter.PATH,
                pattern=f"^{codes.ACCEPTED_CODE_RE.pattern}$",
                description="The invite code (any case).",
            ),
            retry_after(429, 503),
        ],
        responses={
            200: InvitePreviewSerializer,
            400: error("Invalid invite code (malformed)."),
            401: UNAUTHENTICATED,
            404: error("Invite code not found (unknown, or replaced by a newer code)."),
            429: THROTTLED,
            503: UNAVAILABLE,
        },
    )
    def get(self, request: Request, code: str) -> Response:
        try:
            codes.normalize_typed_code(code)
        except codes.MalformedCode:
            raise InvalidInviteCode() from None
        try:
            space, membership = invite_code_resolve(typed_code=code, user_id=caller_id(request))
        except InvalidInviteCode:
            raise NotFound(UNKNOWN_CODE) from None
        preview = InvitePreview(space, space_member_count(space=space), is_member=membership is not None)
        return Response(InvitePreviewSerializer(preview).data)
