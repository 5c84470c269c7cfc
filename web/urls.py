"""The join page at ``join/`` (``INVITE_URL_BASE``'s default): a code in any case, spaces around it, slash or not."""

from django.urls import path, re_path

from web import join

app_name = "web"

urlpatterns = [
    path("", join.enter_code, name="enter"),
    re_path(r"^(?P<code>[^/]+)/?$", join.JoinPageView.as_view(), name="join"),
]
