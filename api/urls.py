"""Every route of the REST API under ``/api/``; each path works with and without a trailing slash.

The guide's examples have no trailing slash, so none is required. The invite
routes under ``spaces/`` come before the space routes: ``spaces/join`` is not
a space id.
"""

from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api.auth import TokenObtainView, TokenRefreshAccessView
from api.invites import InvitePreviewView, JoinView, RegenerateInviteView
from api.spaces import SpaceViewSet


class OptionalSlashRouter(SimpleRouter):
    """``/api/spaces`` and ``/api/spaces/`` alike.

    DRF 3.16 turns any true ``trailing_slash`` argument into "/", so the
    optional slash is set after construction.
    """

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("spaces", SpaceViewSet, basename="space")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshAccessView.as_view(), name="token_refresh"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^spaces/join/?$", JoinView.as_view(), name="space-join"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/invite/?$", RegenerateInviteView.as_view(), name="space-invite"),
    re_path(r"^invites/(?P<code>[^/]+)/?$", InvitePreviewView.as_view(), name="invite-preview"),
    *router.urls,
]
