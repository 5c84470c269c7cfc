"""``/api/spaces``: list, create, retrieve, members.

Each view validates its input, calls one read or one service, and shapes the
output; errors are raised as domain exceptions and turned into responses by
``lifestyle_spaces.api_errors``. The caller is the token's ``user_id`` claim:
nothing here touches the relational database.

DynamoDB round trips (tests count them): list 2, retrieve 1 (2 for a space
the earlier system wrote, whose members are counted), create 1, members 2.
The invite endpoints under ``/api/spaces/`` are in :mod:`api.invites`.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle

from api.pagination import cursor_decode, cursor_encode
from api.params import NOT_FOUND, SPACE_ID_PARAMETER, caller_id, valid_space_id
from api.serializers import (
    MemberListSerializer,
    SpaceCreateSerializer,
    SpaceForViewer,
    SpaceListQuerySerializer,
    SpacePageSerializer,
    SpaceSerializer,
    members_in_display_order,
)
from invites.services import space_create
from lifestyle_spaces.api_schema import (
    BAD_INPUT,
    THROTTLED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    PagedListAutoSchema,
    error,
    retry_after,
)
from spaces.access import space_require_member, space_require_view, space_role_of
from spaces.models import ROLE_OWNER
from spaces.selectors import space_member_count, space_members, space_with_membership, spaces_of_user

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
        description="Throttled per user (`THROTTLE_SPACE_CREATE`).",
        request=SpaceCreateSerializer,
        parameters=[retry_after(429, 503)],
        responses={201: SpaceSerializer, 400: BAD_INPUT, 401: UNAUTHENTICATED, 429: THROTTLED, 503: UNAVAILABLE},
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

    def get_throttles(self) -> list[BaseThrottle]:
        # Creating is limited per user: every space claims a code, and claims are permanent.
        if self.action == "create":
            self.throttle_scope = "space_create"
            return [ScopedRateThrottle()]
        return []

    def _space_id(self) -> str:
        return valid_space_id(self.kwargs[self.lookup_field])

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
