"""The join page (``GET /join/<code>``), joining it (``POST``); every request counts (``THROTTLE_JOIN_PAGE``).

Every code that opens nothing gets one not-found page, the same bytes whoever asks."""

import math
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render, resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache

from accounts.security import AtomicRateThrottle, client_address
from invites import codes
from invites.joining import invite_code_resolve, space_join_with_code
from invites.policies import InvitePolicy
from spaces.access import space_role_of
from spaces.exceptions import AlreadyMember, InvalidInviteCode
from spaces.models import Space
from spaces.selectors import space_member_count

JOINED = "joined"
ALREADY_MEMBER = "member"


class JoinPageThrottle(AtomicRateThrottle):
    scope = "join_page"

    def get_rate(self) -> str:
        return settings.THROTTLE_JOIN_PAGE  # read per request (DRF reads its rates once), so the setting is live

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


def _page(template: str, status: int, context: dict[str, Any] | None = None, retry_after: int = 0) -> HttpResponse:
    # No request context: nothing about the visitor (user, CSRF token) can make two of these differ.
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return HttpResponse(render_to_string(template, context), status=status, headers=headers)


def _user_id(request: HttpRequest) -> str | None:
    return str(request.user.pk) if request.user.is_authenticated else None


@method_decorator(never_cache, name="dispatch")
class JoinPageView(View):
    http_method_names = ["get", "head", "post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        throttle = JoinPageThrottle()
        if not throttle.allow_request(request, None):  # DRF's throttle, outside a DRF view
            wait = max(1, math.ceil(throttle.wait() or 1))
            context = {"wait_seconds": wait, "wait_minutes": max(1, round(wait / 60))}
            return _page("web/throttled.html", 429, context, retry_after=wait)
        try:
            return super().dispatch(request, *args, **kwargs)
        except InvalidInviteCode:
            return _page("web/not_found.html", 404)

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
    path = reverse("web:join", kwargs={"code": code.strip()})  # the canonical path: surrounding spaces dropped
    context = {
        "space_name": space.name or "this space",
        "description": space.description or "",
        "member_count": space_member_count(space=space),
        "grants": InvitePolicy.of(space).role,  # the role the link gives
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
        return _page("web/not_found.html", 404)
    return redirect("web:join", code=code)
