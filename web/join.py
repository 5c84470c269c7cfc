"""The join page: what an invite code opens (``GET /join/<code>``), and joining it (``POST``).

Anyone holding a link sees the preview (the space's name, description and
member count); signed-out visitors get a "Sign in to join" link that brings
them back here. Nothing is joined by a GET: joining is a POST (with CSRF)
through the engine's :func:`~invites.services.space_join_with_code`, as the
API's join. Every code that opens nothing gets the one not-found page (404);
DynamoDB being unavailable is a 503 page, never a 500. Every request is
counted against the visitor's address (:mod:`web.throttling`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from invites import codes
from invites.services import invite_code_resolve, space_join_with_code
from spaces.access import space_role_of
from spaces.dynamodb import DynamoUnavailable, short_reason
from spaces.exceptions import AlreadyMember, InvalidInviteCode, InviteCodeUnavailable
from spaces.models import Space
from spaces.selectors import space_member_count
from web import pages
from web.throttling import join_page_wait

logger = logging.getLogger("web")

JOINED = "joined"
ALREADY_MEMBER = "member"


def _user_id(request: HttpRequest) -> str | None:
    return str(request.user.pk) if request.user.is_authenticated else None


def join_path(code: str) -> str:
    """The canonical path of the join page for a code as typed (surrounding spaces dropped)."""
    return reverse("web:join", kwargs={"code": code.strip()})


@method_decorator(never_cache, name="dispatch")
class JoinPageView(View):
    http_method_names = ["get", "head", "post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = join_page_wait(request)
        if wait is not None:
            return pages.throttled(request, wait)
        try:
            return super().dispatch(request, *args, **kwargs)
        except InvalidInviteCode:
            return pages.invite_not_found(request)
        except (DynamoUnavailable, InviteCodeUnavailable) as exc:
            logger.warning("Join page unavailable: %s", short_reason(exc))
            return pages.unavailable(request)

    def get(self, request: HttpRequest, code: str) -> HttpResponse:
        user_id = _user_id(request)
        space, membership = invite_code_resolve(typed_code=code, user_id=user_id)
        role = space_role_of(space=space, membership=membership, user_id=user_id) if user_id else None
        return _invitation(request, code, space, outcome=ALREADY_MEMBER if role is not None else None)

    def post(self, request: HttpRequest, code: str) -> HttpResponse:
        user_id = _user_id(request)
        if user_id is None:
            return redirect_to_login(request.path)
        try:
            space = space_join_with_code(typed_code=code, user_id=user_id)
        except AlreadyMember:
            space, _membership = invite_code_resolve(typed_code=code, user_id=user_id)
            return _invitation(request, code, space, outcome=ALREADY_MEMBER)
        return _invitation(request, code, space, outcome=JOINED)


def _invitation(request: HttpRequest, code: str, space: Space, *, outcome: str | None) -> HttpResponse:
    path = join_path(code)
    context = {
        "space_name": space.name or "this space",
        "description": space.description or "",
        "member_count": space_member_count(space=space),
        "outcome": outcome,
        "join_path": path,
        "sign_in_url": f"{resolve_url(settings.LOGIN_URL)}?{urlencode({REDIRECT_FIELD_NAME: path}, safe='/')}",
    }
    return render(request, "web/join.html", context)


def enter_code(request: HttpRequest) -> HttpResponse:
    """``GET /join/``: a form for a code received by other means than a link; it leads to the code's page."""
    typed = request.GET.get("code")
    if typed is None or not typed.strip():
        return render(request, "web/enter_code.html", {"missing": typed is not None})
    try:
        code = codes.normalize_typed_code(typed)
    except codes.MalformedCode:
        return pages.invite_not_found(request)
    return redirect("web:join", code=code)
