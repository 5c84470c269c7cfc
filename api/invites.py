"""The invite-code endpoints: regenerate a space's code, join with a code, preview what a code opens.

``POST /api/spaces/<id>/invite`` keeps the guide's contract (its two fields,
its 403, 404 and 500 texts). Joining and previewing are throttled per user,
since both answer "is this a code?". Round trips: regenerate 2 (the space with
the caller's membership, one transaction), join 3 (the claim, the space, one
transaction), preview 2 (the claim, the space with the caller's membership).
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from api.params import NOT_FOUND, SPACE_ID_PARAMETER, caller_id, valid_space_id
from api.serializers import (
    InviteCodeSerializer,
    InviteCodeStateSerializer,
    InviteCodeWithPolicySerializer,
    InvitePolicyChangeSerializer,
    InvitePolicySerializer,
    InvitePreviewSerializer,
    JoinSerializer,
    SpaceForViewer,
    SpaceSerializer,
)
from invites import codes
from invites.policies import InvitePolicy, expiry_in
from invites.services import (
    invite_code_policy_update,
    invite_code_regenerate,
    invite_code_resolve,
    space_join_with_code,
)
from lifestyle_spaces.api_schema import (
    BAD_INPUT,
    THROTTLED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    ValidationErrorSerializer,
    error,
    retry_after,
)
from spaces.access import space_require_invite_manager, space_role_of
from spaces.exceptions import InvalidInviteCode
from spaces.models import ROLE_MEMBER, Space
from spaces.selectors import space_member_count, space_with_membership

REGENERATE_FAILED = "Failed to regenerate invite code"
UNKNOWN_CODE = "Invite code not found"


class RegenerateInviteView(APIView):
    # Limited per user: every new code is a permanent claim.
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invite_regenerate"

    @property
    def server_error_detail(self) -> str | None:
        """The guide's 500 text for any server-side failure of a regeneration (api_errors reads it)."""
        return REGENERATE_FAILED if self.request.method == "POST" else None

    @extend_schema(
        operation_id="spaces_invite_create",
        summary="Give the space a new invite code (owners and admins)",
        description="The old code stops working at once. Works for spaces that have no code yet. "
        "Without a body (or with an empty one) the code never expires and has no limit, as in the guide, "
        "and the answer has the guide's two fields; with a policy it adds `expires_at` and `max_uses`. "
        "Throttled per user (`THROTTLE_INVITE_REGENERATE`).",
        parameters=[SPACE_ID_PARAMETER, retry_after(429)],
        request=InvitePolicySerializer,
        responses={
            200: OpenApiResponse(
                InviteCodeWithPolicySerializer, description="The guide's two fields; the policy fields with one."
            ),
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: error("Only owners and admins can regenerate invite codes."),
            404: NOT_FOUND,
            429: THROTTLED,
            500: error("Failed to regenerate invite code (a database failure; the cause is logged)."),
        },
    )
    def post(self, request: Request, space_id: str) -> Response:
        policy = _policy_from(request)
        space, user_id = _space_managed_by_caller(request, space_id)
        change = invite_code_regenerate(space_id=space.id, space=space, actor_id=user_id, source="api", policy=policy)
        if not change.new_code:  # pragma: no cover - regeneration always ends with a code
            raise RuntimeError(f"regeneration of space {space.id} ended without a code")
        # When another regeneration won the race (applied=False), its code is
        # just as fresh relative to this request: return it.
        if policy.is_default:
            return Response(InviteCodeSerializer(InviteCodeSerializer.for_code(change.new_code)).data)
        return Response(
            InviteCodeWithPolicySerializer(InviteCodeWithPolicySerializer.for_code(change.new_code, policy)).data
        )

    @extend_schema(
        operation_id="spaces_invite_partial_update",
        summary="Change the current code's policy without replacing it (owners and admins)",
        description="`expires_in` counts from now; a `max_uses` at or below the uses so far means used up; "
        "`paused: true` stops the code until set back to false. A code that does not work answers exactly "
        "as a replaced one (join 400 `Invalid invite code`, preview 404).",
        parameters=[SPACE_ID_PARAMETER, retry_after(429, 503)],
        request=InvitePolicyChangeSerializer,
        responses={
            200: InviteCodeStateSerializer,
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: error("Only owners and admins can change invite codes."),
            404: NOT_FOUND,
            409: error("The space has no invite code yet: regenerate one first."),
            429: THROTTLED,
            503: UNAVAILABLE,
        },
    )
    def patch(self, request: Request, space_id: str) -> Response:
        change = InvitePolicyChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        space, user_id = _space_managed_by_caller(request, space_id)
        updated = invite_code_policy_update(space_id=space.id, space=space, actor_id=user_id, **change.validated_data)
        return Response(InviteCodeStateSerializer(InviteCodeStateSerializer.for_space(updated)).data)


def _policy_from(request: Request) -> InvitePolicy:
    payload = InvitePolicySerializer(data=request.data if request.data else {})
    payload.is_valid(raise_exception=True)
    return InvitePolicy(
        expires_at=expiry_in(payload.validated_data.get("expires_in")), max_uses=payload.validated_data.get("max_uses")
    )


def _space_managed_by_caller(request: Request, space_id: str) -> tuple[Space, str]:
    """The space, read with the caller's membership, if the caller may manage its invite code."""
    space_id = valid_space_id(space_id)
    user_id = caller_id(request)
    space, membership = space_with_membership(space_id=space_id, user_id=user_id)
    space_require_invite_manager(role=space_role_of(space=space, membership=membership, user_id=user_id))
    return space, user_id


class JoinView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "invite_join"

    @extend_schema(
        operation_id="spaces_join_create",
        summary="Join a space with an invite code",
        description="Case and surrounding white space of the code do not matter. Throttled per user.",
        request=JoinSerializer,
        parameters=[retry_after(429, 503)],
        responses={
            200: SpaceSerializer,
            400: OpenApiResponse(
                ValidationErrorSerializer,
                description="`Invalid invite code` (unknown, stale or malformed), "
                "or a body that is not JSON or has the wrong types (`errors`).",
            ),
            401: UNAUTHENTICATED,
            409: error("You are already a member of this space."),
            429: THROTTLED,
            503: UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        payload = JoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_join_with_code(typed_code=payload.validated_data["invite_code"], user_id=caller_id(request))
        shown = SpaceForViewer(space, ROLE_MEMBER, member_count=space_member_count(space=space))
        return Response(SpaceSerializer(shown).data)


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
