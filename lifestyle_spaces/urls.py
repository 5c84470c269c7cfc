from django.contrib import admin
from django.urls import include, path

from web.home import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("join/", include("web.urls")),
    path("accounts/", include("web.account_urls")),
    path("", include("operations.urls")),
]

# JSON error bodies for /api/ paths that no view handles (lifestyle_spaces.api_errors).
handler400 = "lifestyle_spaces.api_errors.bad_request"
handler404 = "lifestyle_spaces.api_errors.not_found"
handler500 = "lifestyle_spaces.api_errors.server_error"
