from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api import TokenObtainView, TokenRefreshAccessView

# API paths work with and without a trailing slash (the guide's examples have none).
urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^api/auth/token/?$", TokenObtainView.as_view(), name="token_obtain_pair"),
    re_path(r"^api/auth/token/refresh/?$", TokenRefreshAccessView.as_view(), name="token_refresh"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("spaces.api.urls")),
    path("api/", include("invites.api.urls")),
    path("", include("operations.urls")),
]

# JSON error bodies for /api/ paths that no view handles (lifestyle_spaces.api_errors).
handler400 = "lifestyle_spaces.api_errors.bad_request"
handler404 = "lifestyle_spaces.api_errors.not_found"
handler500 = "lifestyle_spaces.api_errors.server_error"
