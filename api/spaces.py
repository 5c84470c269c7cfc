"""``/api/spaces``: list (2 round trips), create (1), retrieve (1; 2 for a legacy space), members (2)."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle

from api.params import NOT_FOUND, SPACE_ID_PARAMETER, caller_id, cursor_decode, cursor_encode, space_for_caller
from api.serializers import (
    MemberListSerializer,
    SpaceCreateSerializer,
    SpaceListQuerySerializer,
    SpacePageSerializer,
    SpaceSerializer,
    members_in_display_order,
    space_for_viewer,
)
from invites.services import space_create
from lifestyle_spaces import api_schema as doc
from spaces.access import space_require_member, space_require_view
from spaces.models import ROLE_OWNER
from spaces.selectors import space_member_count, space_members, spaces_of_user

NOT_A_MEMBER = doc.error("The caller is not a member of this space.")


@extend_schema_view(
    list=extend_schema(
        operation_id="spaces_list",
        summary="The caller's spaces, newest first",
        parameters=[SpaceListQuerySerializer, doc.retry_after(503)],
        responses=doc.responses({200: SpacePageSerializer, 503: doc.UNAVAILABLE}),
    ),
    create=extend_schema(
        summary="Create a space; the caller becomes its owner",
        description="Throttled per user (`THROTTLE_SPACE_CREATE`).",
        request=SpaceCreateSerializer,
        parameters=[doc.retry_after(429, 503)],
        responses=doc.responses({201: SpaceSerializer, 429: doc.THROTTLED, 503: doc.UNAVAILABLE}),
    ),
    retrieve=extend_schema(
        summary="A space, with its invite code for members",
        parameters=[SPACE_ID_PARAMETER, doc.retry_after(503)],
        responses=doc.responses(
            {
                200: SpaceSerializer,
                403: doc.error("The space is private and the caller is not a member."),
                404: NOT_FOUND,
                503: doc.UNAVAILABLE,
            }
        ),
    ),
)
class SpaceViewSet(viewsets.ViewSet):
    lookup_field = "space_id"
    # Any id reaches the view, which answers a malformed one with a JSON 400 rather than the resolver's 404.
    lookup_value_regex = "[^/]+"

    def get_throttles(self) -> list[BaseThrottle]:
        # Creating is limited per user: every space claims a code, and claims are permanent.
        if self.action == "create":
            self.throttle_scope = "space_create"
            return [ScopedRateThrottle()]
        return []

    def list(self, request: Request) -> Response:
        query = SpaceListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = caller_id(request)
        cursor = query.validated_data.get("cursor")
        after = cursor_decode(user_id=user_id, cursor=cursor) if cursor else None
        page, next_after = spaces_of_user(user_id=user_id, limit=query.validated_data["limit"], after_space_id=after)
        body = {
            "results": [space_for_viewer(space, membership.role) for space, membership in page],
            "nextCursor": cursor_encode(user_id=user_id, after_space_id=next_after) if next_after else None,
        }
        return Response(SpacePageSerializer(body).data)

    def create(self, request: Request) -> Response:
        payload = SpaceCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_create(owner_id=caller_id(request), **payload.validated_data)
        shown = space_for_viewer(space, ROLE_OWNER, member_count=1)
        return Response(SpaceSerializer(shown).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, space_id: str) -> Response:
        space, role, _ = space_for_caller(request, space_id)
        space_require_view(space=space, role=role)
        shown = space_for_viewer(space, role, member_count=space_member_count(space=space))
        return Response(SpaceSerializer(shown).data)

    @extend_schema(
        summary="The space's members, owner first (members only)",
        parameters=[SPACE_ID_PARAMETER, doc.retry_after(503)],
        responses=doc.responses({200: MemberListSerializer, 403: NOT_A_MEMBER, 404: NOT_FOUND, 503: doc.UNAVAILABLE}),
    )
    @action(detail=True, methods=["get"], url_path="members")
    def members(self, request: Request, space_id: str) -> Response:
        space, role, _ = space_for_caller(request, space_id)
        space_require_member(role=role)
        members = members_in_display_order(space_members(space_id=space.id))
        return Response(MemberListSerializer({"results": members}).data)
