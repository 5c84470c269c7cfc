"""Regenerate a code (2 round trips), join with one (3), preview what one opens (2); join and preview throttled."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.security import AtomicScopedRateThrottle
from api import serializers as shapes
from api.params import NOT_FOUND, SPACE_ID_PARAMETER, caller_id, space_for_caller, typed_code
from invites import codes
from invites.joining import invite_code_resolve, space_join_with_code
from invites.policies import InvitePolicy, expiry_in, uses_of
from invites.services import invite_code_policy_update, invite_code_regenerate
from lifestyle_spaces import api_schema as doc
from spaces.access import space_require_invite_manager
from spaces.exceptions import InvalidInviteCode
from spaces.models import ROLE_MEMBER
from spaces.selectors import space_member_count

CODE_PATTERN = f"^{codes.ACCEPTED_CODE_RE.pattern}$"


class RegenerateInviteView(APIView):
    # Limited per user: every new code is a permanent claim.
    throttle_classes = [AtomicScopedRateThrottle]
    throttle_scope = "invite_regenerate"

    @property
    def server_error_detail(self) -> str | None:  # api_errors answers any failure of a regeneration with it
        return "Failed to regenerate invite code" if self.request.method == "POST" else None

    @extend_schema(
        operation_id="spaces_invite_create",
        summary="Give the space a new invite code (owners and admins)",
        description="The old code stops working at once. Works for spaces that have no code yet. "
        "Without a body (or with an empty one) the code never expires and has no limit, as in the guide, "
        "and the answer has the guide's two fields; with a policy it adds `expires_at` and `max_uses`. "
        "Throttled per user (`THROTTLE_INVITE_REGENERATE`).",
        parameters=[SPACE_ID_PARAMETER, doc.retry_after(429)],
        request=shapes.InvitePolicySerializer,
        responses={
            200: OpenApiResponse(
                shapes.InviteCodeWithPolicySerializer, description="The guide's two fields; the policy fields with one."
            ),
            400: doc.BAD_INPUT,
            401: doc.UNAUTHENTICATED,
            403: doc.error("Only owners and admins can regenerate invite codes."),
            404: NOT_FOUND,
            429: doc.THROTTLED,
            500: doc.error("Failed to regenerate invite code (a database failure; the cause is logged)."),
        },
    )
    def post(self, request: Request, space_id: str) -> Response:
        payload = shapes.InvitePolicySerializer(data=request.data or {})
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        expires_at, role = expiry_in(data.get("expires_in")), data.get("role", ROLE_MEMBER)
        policy = InvitePolicy(expires_at=expires_at, max_uses=data.get("max_uses"), role=role)
        space, role, user_id = space_for_caller(request, space_id)
        space_require_invite_manager(role=role)
        change = invite_code_regenerate(space_id=space.id, space=space, actor_id=user_id, source="api", policy=policy)
        # The code as stored: ours, or a rival regeneration's that won (just as fresh for this request).
        stored = InvitePolicy.of(change.space) if change.space else policy
        shape = shapes.InviteCodeSerializer if stored.is_default else shapes.InviteCodeWithPolicySerializer
        return Response(shape(shapes.invite_code_body(change.new_code or "", stored)).data)

    @extend_schema(
        operation_id="spaces_invite_partial_update",
        summary="Change the current code's policy without replacing it (owners and admins)",
        description="`expires_in` counts from now; a `max_uses` at or below the uses so far means used up; "
        "`paused: true` stops the code until set back to false. A code that does not work answers exactly "
        "as a replaced one (join 400 `Invalid invite code`, preview 404).",
        parameters=[SPACE_ID_PARAMETER, doc.retry_after(429, 503)],
        request=shapes.InvitePolicyChangeSerializer,
        responses={
            200: shapes.InviteCodeStateSerializer,
            400: doc.BAD_INPUT,
            401: doc.UNAUTHENTICATED,
            403: doc.error("Only owners and admins can change invite codes."),
            404: NOT_FOUND,
            409: doc.error("The space has no invite code yet: regenerate one first."),
            429: doc.THROTTLED,
            503: doc.UNAVAILABLE,
        },
    )
    def patch(self, request: Request, space_id: str) -> Response:
        change = shapes.InvitePolicyChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        space, role, user_id = space_for_caller(request, space_id)
        space_require_invite_manager(role=role)
        updated = invite_code_policy_update(space_id=space.id, space=space, actor_id=user_id, **change.validated_data)
        body = shapes.invite_code_body(updated.invite_code or "", InvitePolicy.of(updated), uses=uses_of(updated))
        return Response(shapes.InviteCodeStateSerializer(body).data)


class JoinView(APIView):
    throttle_classes = [AtomicScopedRateThrottle]
    throttle_scope = "invite_join"

    @extend_schema(
        operation_id="spaces_join_create",
        summary="Join a space with an invite code",
        description="Case and surrounding white space of the code do not matter. Throttled per user.",
        request=shapes.JoinSerializer,
        parameters=[doc.retry_after(429, 503)],
        responses={
            200: shapes.SpaceSerializer,
            400: OpenApiResponse(
                doc.ValidationErrorSerializer,
                description="`Invalid invite code` (unknown, stale or malformed), "
                "or a body that is not JSON or has the wrong types (`errors`).",
            ),
            401: doc.UNAUTHENTICATED,
            409: doc.error("You are already a member of this space."),
            429: doc.THROTTLED,
            503: doc.UNAVAILABLE,
        },
    )
    def post(self, request: Request) -> Response:
        payload = shapes.JoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_join_with_code(typed_code=payload.validated_data["invite_code"], user_id=caller_id(request))
        role, count = InvitePolicy.of(space).role, space_member_count(space=space)
        shown = shapes.space_for_viewer(space, role, member_count=count)
        return Response(shapes.SpaceSerializer(shown).data)


class InvitePreviewView(APIView):
    throttle_classes = [AtomicScopedRateThrottle]
    throttle_scope = "invite_preview"

    @extend_schema(
        summary="Preview the space an invite code opens",
        parameters=[
            OpenApiParameter(
                "code", str, OpenApiParameter.PATH, pattern=CODE_PATTERN, description="The invite code (any case)."
            ),
            doc.retry_after(429, 503),
        ],
        responses={
            200: shapes.InvitePreviewSerializer,
            400: doc.error("Invalid invite code (malformed)."),
            401: doc.UNAUTHENTICATED,
            404: doc.error("Invite code not found (unknown, or replaced by a newer code)."),
            429: doc.THROTTLED,
            503: doc.UNAVAILABLE,
        },
    )
    def get(self, request: Request, code: str) -> Response:
        typed_code(code)  # a malformed code is a 400, an unknown one a 404
        try:
            space, membership = invite_code_resolve(typed_code=code, user_id=caller_id(request))
        except InvalidInviteCode:
            raise NotFound("Invite code not found") from None
        preview = {"space": space, "member_count": space_member_count(space=space), "is_member": membership is not None}
        return Response(shapes.InvitePreviewSerializer(preview).data)
