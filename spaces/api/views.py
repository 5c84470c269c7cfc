"""The spaces API: thin views over the selectors, the access rules and the engine.

Each view validates its input, calls one read and one service, and shapes
the output; errors are raised as domain exceptions and turned into responses
by ``lifestyle_spaces.api_errors``. The caller is the token's ``user_id``
claim: nothing here touches the relational database.

DynamoDB round trips (tests count them): list 2, retrieve 1 (2 for a space
the earlier system wrote, whose members are counted), create 1, regenerate 2,
join 3, members 2. Every write is one transaction.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from invites.services import invite_code_regenerate, space_create, space_join_with_code
from lifestyle_spaces.api_schema import (
    BAD_INPUT,
    THROTTLED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    PagedListAutoSchema,
    ValidationErrorSerializer,
    error,
    retry_after,
)
from spaces.access import (
    space_require_invite_manager,
    space_require_member,
    space_require_view,
    space_role_of,
)
from spaces.api.pagination import cursor_decode, cursor_encode
from spaces.api.serializers import (
    InviteCodeSerializer,
    JoinSerializer,
    MemberListSerializer,
    SpaceCreateSerializer,
    SpaceForViewer,
    SpaceListQuerySerializer,
    SpacePageSerializer,
    SpaceSerializer,
    members_in_display_order,
)
from spaces.ids import SPACE_ID_RE, is_valid_space_id
from spaces.models import ROLE_MEMBER, ROLE_OWNER
from spaces.selectors import space_member_count, space_members, space_with_membership, spaces_of_user

REGENERATE_FAILED = "Failed to regenerate invite code"


class InvalidSpaceId(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid space id"
    default_code = "invalid_space_id"


def caller_id(request: Request) -> str:
    """The user id from the token's ``user_id`` claim (the UUID in ``MEMBER#`` keys)."""
    return str(request.user.id)


SPACE_ID_PARAMETER = OpenApiParameter(
    "space_id",
    str,
    OpenApiParameter.PATH,
    pattern=f"^{SPACE_ID_RE.pattern}$",
    description="The space's id (UUIDv7 for spaces created here).",
)
NOT_FOUND = error("No space has this id.")
NOT_A_MEMBER = error("The caller is not a member of this space.")


@extend_schema_view(
    list=extend_schema(
        operation_id="spaces_list",
        summary="The caller's spaces, newest first",
        parameters=[SpaceListQuerySerializer, retry_after(503)],
        responses={200: SpacePageSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 503: UNAVAILABLE},
    ),
    create=extend_schema(
        summary="Create a space; the caller becomes its owner",
        request=SpaceCreateSerializer,
        parameters=[retry_after(503)],
        responses={201: SpaceSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 503: UNAVAILABLE},
    ),
    retrieve=extend_schema(
        summary="A space, with its invite code for members",
        parameters=[SPACE_ID_PARAMETER, retry_after(503)],
        responses={
            200: SpaceSerializer,
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: error("The space is private and the caller is not a member."),
            404: NOT_FOUND,
            503: UNAVAILABLE,
        },
    ),
)
class SpaceViewSet(viewsets.ViewSet):
    schema = PagedListAutoSchema()
    lookup_field = "space_id"
    # Everything up to the next slash reaches the view, which answers a
    # malformed id with a JSON 400 instead of letting the URL resolver 404.
    lookup_value_regex = "[^/]+"

    # Set per action through @action(...): a throttle scope, and the detail
    # of the 500 that a server-side failure becomes (api_errors).
    throttle_scope: str | None = None
    server_error_detail: str | None = None

    def _space_id(self) -> str:
        space_id = self.kwargs[self.lookup_field]
        if not is_valid_space_id(space_id):
            raise InvalidSpaceId()
        return space_id

    def list(self, request: Request) -> Response:
        query = SpaceListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = caller_id(request)
        cursor = query.validated_data.get("cursor")
        after = cursor_decode(user_id=user_id, cursor=cursor) if cursor else None
        page, next_after = spaces_of_user(user_id=user_id, limit=query.validated_data["limit"], after_space_id=after)
        body = {
            "results": [SpaceForViewer(space, membership.role) for space, membership in page],
            "nextCursor": cursor_encode(user_id=user_id, after_space_id=next_after) if next_after else None,
        }
        return Response(SpacePageSerializer(body).data)

    def create(self, request: Request) -> Response:
        payload = SpaceCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_create(owner_id=caller_id(request), **payload.validated_data)
        shown = SpaceForViewer(space, ROLE_OWNER, member_count=1)
        return Response(SpaceSerializer(shown).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, space_id: str) -> Response:
        space_id = self._space_id()
        user_id = caller_id(request)
        space, membership = space_with_membership(space_id=space_id, user_id=user_id)
        role = space_role_of(space=space, membership=membership, user_id=user_id)
        space_require_view(space=space, role=role)
        shown = SpaceForViewer(space, role, member_count=space_member_count(space=space))
        return Response(SpaceSerializer(shown).data)

    @extend_schema(
        summary="Give the space a new invite code (owners and admins)",
        description="The old code stops working at once. Works for spaces that have no code yet.",
        parameters=[SPACE_ID_PARAMETER],
        request=None,
        responses={
            200: InviteCodeSerializer,
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: error("Only owners and admins can regenerate invite codes."),
            404: NOT_FOUND,
            500: error("Failed to regenerate invite code (a database failure; the cause is logged)."),
        },
    )
    @action(detail=True, methods=["post"], url_path="invite", server_error_detail=REGENERATE_FAILED)
    def invite(self, request: Request, space_id: str) -> Response:
        space_id = self._space_id()
        user_id = caller_id(request)
        space, membership = space_with_membership(space_id=space_id, user_id=user_id)
        space_require_invite_manager(role=space_role_of(space=space, membership=membership, user_id=user_id))
        change = invite_code_regenerate(space_id=space_id, space=space, actor_id=user_id, source="api")
        if not change.new_code:  # pragma: no cover - regeneration always ends with a code
            raise RuntimeError(f"regeneration of space {space_id} ended without a code")
        # When another regeneration won the race (applied=False), its code is
        # just as fresh relative to this request: return it.
        return Response(InviteCodeSerializer(InviteCodeSerializer.for_code(change.new_code)).data)

    @extend_schema(
        summary="The space's members, owner first (members only)",
        parameters=[SPACE_ID_PARAMETER, retry_after(503)],
        responses={
            200: MemberListSerializer,
            400: BAD_INPUT,
            401: UNAUTHENTICATED,
            403: NOT_A_MEMBER,
            404: NOT_FOUND,
            503: UNAVAILABLE,
        },
    )
    @action(detail=True, methods=["get"], url_path="members")
    def members(self, request: Request, space_id: str) -> Response:
        space_id = self._space_id()
        user_id = caller_id(request)
        space, membership = space_with_membership(space_id=space_id, user_id=user_id)
        space_require_member(role=space_role_of(space=space, membership=membership, user_id=user_id))
        members = members_in_display_order(space_members(space_id=space_id))
        return Response(MemberListSerializer({"results": members}).data)

    @extend_schema(
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
    @action(
        detail=False,
        methods=["post"],
        url_path="join",
        throttle_classes=[ScopedRateThrottle],
        throttle_scope="invite_join",
    )
    def join(self, request: Request) -> Response:
        payload = JoinSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_join_with_code(typed_code=payload.validated_data["invite_code"], user_id=caller_id(request))
        shown = SpaceForViewer(space, ROLE_MEMBER, member_count=space_member_count(space=space))
        return Response(SpaceSerializer(shown).data)
