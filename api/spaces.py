"""``/api/spaces``: list (2 round trips), create (1), retrieve (1; 2 for a legacy space); members: api/members.py."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.security import AtomicScopedRateThrottle
from api import serializers as shapes
from api.params import NOT_FOUND, SPACE_ID_PARAMETER, caller_id, cursor_decode, cursor_encode, space_for_caller
from invites.services import space_create
from lifestyle_spaces import api_schema as doc
from spaces.access import space_require_view
from spaces.models import ROLE_OWNER
from spaces.selectors import space_member_count, spaces_of_user

PRIVATE = doc.error("The space is private and the caller is not a member.")


@extend_schema_view(
    list=extend_schema(
        operation_id="spaces_list",
        summary="The caller's spaces, newest first",
        parameters=[shapes.SpaceListQuerySerializer, doc.retry_after(503)],
        responses=doc.responses({200: shapes.SpacePageSerializer, 503: doc.UNAVAILABLE}),
    ),
    create=extend_schema(
        summary="Create a space; the caller becomes its owner",
        description="Throttled per user (`THROTTLE_SPACE_CREATE`).",
        request=shapes.SpaceCreateSerializer,
        parameters=[doc.retry_after(429, 503)],
        responses=doc.responses({201: shapes.SpaceSerializer, 429: doc.THROTTLED, 503: doc.UNAVAILABLE}),
    ),
    retrieve=extend_schema(
        summary="A space, with its invite code for members",
        parameters=[SPACE_ID_PARAMETER, doc.retry_after(503)],
        responses=doc.responses({200: shapes.SpaceSerializer, 403: PRIVATE, 404: NOT_FOUND, 503: doc.UNAVAILABLE}),
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
            return [AtomicScopedRateThrottle()]
        return []

    def list(self, request: Request) -> Response:
        query = shapes.SpaceListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = caller_id(request)
        cursor = query.validated_data.get("cursor")
        after = cursor_decode(user_id=user_id, cursor=cursor) if cursor else None
        page, next_after = spaces_of_user(user_id=user_id, limit=query.validated_data["limit"], after_space_id=after)
        body = {
            "results": [shapes.space_for_viewer(space, membership.role) for space, membership in page],
            "nextCursor": cursor_encode(user_id=user_id, after=next_after) if next_after else None,
        }
        return Response(shapes.SpacePageSerializer(body).data)

    def create(self, request: Request) -> Response:
        payload = shapes.SpaceCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space = space_create(owner_id=caller_id(request), **payload.validated_data)
        shown = shapes.space_for_viewer(space, ROLE_OWNER, member_count=1)
        return Response(shapes.SpaceSerializer(shown).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, space_id: str) -> Response:
        space, role, _ = space_for_caller(request, space_id)
        space_require_view(space=space, role=role)
        shown = shapes.space_for_viewer(space, role, member_count=space_member_count(space=space))
        return Response(shapes.SpaceSerializer(shown).data)
