"""Every route of the REST API under ``/api/``; each path works with and without a trailing slash.

The guide's examples have no trailing slash, so none is required. The invite
routes under ``spaces/`` come before the space routes: ``spaces/join`` is not
a space id.
"""

from django.conf import settings
from django.urls import URLPattern, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser
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


def documentation_routes(exposure: str) -> list[URLPattern]:
    """The OpenAPI schema and Swagger UI: for everyone, for staff signed in to the admin, or not at all."""
    if exposure == "off":
        return []
    access = (
        {"permission_classes": [AllowAny], "authentication_classes": []}
        if exposure == "public"
        else {"permission_classes": [IsAdminUser], "authentication_classes": [SessionAuthentication]}
    )
    return [
        re_path(r"^schema/?$", SpectacularAPIView.as_view(**access), name="schema"),
        # The split view serves its start-up script as a file, so the page needs no inline script (CSP).
        re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema", **access), name="swagger-ui"),
    ]


router = OptionalSlashRouter()
router.register("spaces", SpaceViewSet, basename="space")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshAccessView.as_view(), name="token_refresh"),
    *documentation_routes(settings.API_DOCS),
    re_path(r"^spaces/join/?$", JoinView.as_view(), name="space-join"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/invite/?$", RegenerateInviteView.as_view(), name="space-invite"),
    re_path(r"^invites/(?P<code>[^/]+)/?$", InvitePreviewView.as_view(), name="invite-preview"),
    *router.urls,
]
