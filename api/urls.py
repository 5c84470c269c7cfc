"""The API's routes, each with an optional trailing slash; ``spaces/join`` comes before the space routes."""

from django.conf import settings
from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.routers import SimpleRouter

from api.auth import TokenObtainView, TokenRefreshAccessView
from api.invites import InvitePreviewView, JoinView, RegenerateInviteView
from api.members import BlocksView, BlockView, CleanupView, MembersView, MemberView, OwnerView
from api.spaces import SpaceViewSet

# Who may read the OpenAPI schema and Swagger UI (API_DOCS): everyone, or staff signed in to the admin.
DOCS_ACCESS: dict[str, dict[str, list[type]]] = {
    "public": {"permission_classes": [AllowAny], "authentication_classes": []},
    "staff": {"permission_classes": [IsAdminUser], "authentication_classes": [SessionAuthentication]},
}

router = SimpleRouter()
router.trailing_slash = "/?"  # set afterwards: DRF 3.16 turns any true trailing_slash argument into "/"
router.register("spaces", SpaceViewSet, basename="space")

urlpatterns = [
    re_path(r"^auth/token/?$", TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^auth/token/refresh/?$", TokenRefreshAccessView.as_view(), name="token_refresh"),
    re_path(r"^spaces/join/?$", JoinView.as_view(), name="space-join"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/invite/?$", RegenerateInviteView.as_view(), name="space-invite"),
    re_path(r"^invites/(?P<code>[^/]+)/?$", InvitePreviewView.as_view(), name="invite-preview"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/members/?$", MembersView.as_view(), name="space-members"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/members/cleanup/?$", CleanupView.as_view(), name="space-members-cleanup"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/members/(?P<user_id>[^/]+)/?$", MemberView.as_view(), name="space-member"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/owner/?$", OwnerView.as_view(), name="space-owner"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/blocks/?$", BlocksView.as_view(), name="space-blocks"),
    re_path(r"^spaces/(?P<space_id>[^/]+)/blocks/(?P<user_id>[^/]+)/?$", BlockView.as_view(), name="space-block"),
    *router.urls,
]
if access := DOCS_ACCESS.get(settings.API_DOCS):
    urlpatterns += [
        re_path(r"^schema/?$", SpectacularAPIView.as_view(**access), name="schema"),
        # The split view serves its start-up script as a file, so the page needs no inline script (CSP).
        re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema", **access), name="swagger-ui"),
    ]
