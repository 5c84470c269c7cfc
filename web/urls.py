"""The join page, included at ``join/``: ``INVITE_URL_BASE`` (default ``/join/``) + code leads here.

The code may come in any case and with surrounding spaces (``/join/%20k7mpq2xr%20``);
a trailing slash is optional.
"""

from django.urls import path, re_path

from web import join

app_name = "web"

urlpatterns = [
    path("", join.enter_code, name="enter"),
    re_path(r"^(?P<code>[^/]+)/?$", join.JoinPageView.as_view(), name="join"),
]
