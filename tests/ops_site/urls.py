from django.urls import path

from lifestyle_spaces.urls import urlpatterns as project_urlpatterns
from tests.ops_site.views import fail, hold_worker, regenerate_and_log

urlpatterns = [
    *project_urlpatterns,
    path("test-only/hold", hold_worker),
    path("test-only/fail", fail),
    path("test-only/regenerate/<str:space_id>", regenerate_and_log),
]
