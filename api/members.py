"""The people of a space: list members or blocks (2 round trips); remove, leave, block, unblock, change a role,
hand ownership over (each 2: the space with both memberships, one transaction); clean up after a leaked code."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.security import AtomicScopedRateThrottle
from api import serializers as shapes
from api.params import SPACE_ID_PARAMETER, cursor_decode, cursor_encode, people_for_caller, space_for_caller, typed_code
from lifestyle_spaces import api_schema as doc
from spaces import members as engine
from spaces.access import space_require_manager_of, space_require_member
from spaces.ids import SPACE_ID_RE
from spaces.models import ROLES_THAT_MANAGE_INVITES
from spaces.selectors import space_members_page

USER_ID = OpenApiParameter("user_id", str, OpenApiParameter.PATH, pattern=f"^{SPACE_ID_RE.pattern}$")
View = TypeVar("View", bound=Callable[..., Response])
BLOCK = OpenApiParameter("block", bool, description="Also block them (not with `me`).")
ERRORS = {
    403: doc.error("The caller's role does not allow it (the detail says why)."),
    404: doc.error("No space has this id, or the user is not a member (or, to unblock, not blocked)."),
    409: doc.error("The owner cannot leave or be removed, or a role changed meanwhile (the detail says which)."),
    429: doc.THROTTLED,
    503: doc.UNAVAILABLE,
}


def _documented(summary: str, ok: Any = None, *, user: bool = True, **more: Any) -> Callable[[View], View]:
    """A write's schema: throttled, its errors, 204 unless ``ok`` says otherwise."""
    parameters = [SPACE_ID_PARAMETER, *([USER_ID] if user else []), *more.pop("parameters", [])]
    return extend_schema(
        summary=summary,
        description=more.pop("description", "") + " Throttled per user (`THROTTLE_MEMBER_CHANGES`).",
        parameters=[*parameters, doc.retry_after(429, 503)],
        responses=doc.responses({200 if ok else 204: ok, **ERRORS}),
        **more,
    )


class PeopleView(APIView):
    throttle_scopes: dict[str, str] = {}  # by method; reads are not throttled

    def get_throttles(self) -> list[BaseThrottle]:
        self.throttle_scope = self.throttle_scopes.get(self.request.method or "", "")
        return [AtomicScopedRateThrottle()] if self.throttle_scope else []

    def page(self, request: Request, space_id: str, kind: str) -> Response:
        blocks = kind == "blocks"
        serializer = shapes.PeopleQuerySerializer if blocks else shapes.MemberListQuerySerializer
        query = serializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        space, role, user_id = space_for_caller(request, space_id)
        space_require_member(role=role)
        code = query.validated_data.get("code")
        if blocks or code is not None:
            space_require_manager_of(role=role, target_role=None)
        scope, cursor = f":{kind}:{space.id}", query.validated_data.get("cursor")
        after = cursor_decode(user_id=user_id, cursor=cursor, scope=scope) if cursor else None
        code, limit = typed_code(code) if code is not None else None, query.validated_data["limit"]
        page, next_after = space_members_page(space_id=space.id, limit=limit, after=after, code=code, blocks=blocks)
        managers = shapes.MemberWithProvenanceSerializer if role in ROLES_THAT_MANAGE_INVITES else None
        shape = shapes.BlockSerializer if blocks else managers or shapes.MemberSerializer
        next_cursor = cursor_encode(user_id=user_id, after=next_after, scope=scope) if next_after else None
        return Response({"results": shape(page, many=True).data, "nextCursor": next_cursor})


class MembersView(PeopleView):
    @extend_schema(
        summary="The space's members, a page at a time in user-id order (members only)",
        description="Owners and admins also see how each came in (`inviteCode`, `codeSetBy`; null: unknown) "
        "and may list only those who joined with a `code`.",
        parameters=[SPACE_ID_PARAMETER, shapes.MemberListQuerySerializer, doc.retry_after(503)],
        responses=doc.responses({200: shapes.MemberPageSerializer, **ERRORS}),
    )
    def get(self, request: Request, space_id: str) -> Response:
        return self.page(request, space_id, "members")


class BlocksView(PeopleView):
    @extend_schema(
        summary="Users blocked from the space, a page at a time (owners and admins)",
        parameters=[SPACE_ID_PARAMETER, shapes.PeopleQuerySerializer, doc.retry_after(503)],
        responses=doc.responses({200: shapes.BlockPageSerializer, **ERRORS}),
    )
    def get(self, request: Request, space_id: str) -> Response:
        return self.page(request, space_id, "blocks")


class MemberView(PeopleView):
    throttle_scopes = {"DELETE": "member_remove", "PATCH": "member_role"}

    @_documented(
        "Remove a member (`?block=true`: and block them); `me`: leave the space",
        description="The owner removes anyone but themselves, an admin members and viewers; the owner cannot "
        "leave before handing ownership over (409).",
        parameters=[BLOCK],
    )
    def delete(self, request: Request, space_id: str, user_id: str) -> Response:
        block = request.query_params.get("block", "false")
        if block not in ("true", "false") or (user_id == "me" and block == "true"):
            raise ValidationError({"block": ["Must be true or false, and false for yourself."]})
        space, actor, target_id, target = people_for_caller(request, space_id, user_id)
        who = None if user_id == "me" else actor  # leaving is a removal by the member themselves
        engine.space_member_remove(space=space, user_id=target_id, target=target, actor=who, block=block == "true")
        return Response(status=204)

    @_documented("Change a member's role (the owner only)", shapes.MemberSerializer, request=shapes.RoleSerializer)
    def patch(self, request: Request, space_id: str, user_id: str) -> Response:
        payload = shapes.RoleSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space, actor, target_id, target = people_for_caller(request, space_id, user_id)
        role = payload.validated_data["role"]
        changed = engine.space_member_role_set(space=space, user_id=target_id, target=target, role=role, actor=actor)
        return Response(shapes.MemberSerializer(changed).data)


class OwnerView(PeopleView):
    throttle_scopes = {"POST": "owner_transfer"}

    @_documented(
        "Hand ownership over to a member (owner only); the owner becomes an admin",
        user=False,
        request=shapes.OwnerSerializer,
    )
    def post(self, request: Request, space_id: str) -> Response:
        payload = shapes.OwnerSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        space, actor, target_id, target = people_for_caller(request, space_id, payload.validated_data["user_id"])
        engine.space_owner_transfer(space=space, user_id=target_id, target=target, actor=actor)
        return Response(status=204)


class BlockView(PeopleView):
    throttle_scopes = {"PUT": "member_block", "DELETE": "member_block"}

    @_documented("Block a user from joining through any code (a member is removed too)", request=None)
    def put(self, request: Request, space_id: str, user_id: str) -> Response:
        space, actor, target_id, target = people_for_caller(request, space_id, user_id)
        engine.space_member_remove(space=space, user_id=target_id, target=target, actor=actor, block=True)
        return Response(status=204)

    @_documented("Unblock a user (owners and admins)")
    def delete(self, request: Request, space_id: str, user_id: str) -> Response:
        space, actor, target_id, _target = people_for_caller(request, space_id, user_id)
        engine.space_user_unblock(space=space, user_id=target_id, actor=actor)
        return Response(status=204)


class CleanupView(PeopleView):
    throttle_scopes = {"POST": "members_cleanup"}

    @_documented(
        "Remove (and block) everyone who joined with a code, after a leak (owners and admins)",
        shapes.CleanupReportSerializer,
        user=False,
        description="At most `MEMBERS_CLEANUP_PER_REQUEST` people in about `MEMBERS_CLEANUP_SECONDS` a request: "
        "call again until `complete`. Admins remove members and viewers only (the others are `skipped`).",
        request=shapes.CleanupSerializer,
    )
    def post(self, request: Request, space_id: str) -> Response:
        payload = shapes.CleanupSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        code, block = typed_code(payload.validated_data["code"]), payload.validated_data["block"]
        space, actor, _me, _target = people_for_caller(request, space_id, "me")
        limits = {"most": settings.MEMBERS_CLEANUP_PER_REQUEST, "seconds": settings.MEMBERS_CLEANUP_SECONDS}
        report = engine.space_members_cleanup(space=space, code=code, actor=actor, block=block, **limits)
        return Response(shapes.CleanupReportSerializer(report).data)
