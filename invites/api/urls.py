"""Routes of the invites API; every path works with and without a trailing slash."""

from django.urls import re_path

from invites.api.views import InvitePreviewView

urlpatterns = [
    re_path(r"^invites/(?P<code>[^/]+)/?$", InvitePreviewView.as_view(), name="invite-preview"),
]
