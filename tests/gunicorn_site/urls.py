from django.urls import path

from lifestyle_spaces.urls import urlpatterns as project_urlpatterns
from tests.gunicorn_site.views import ThrottledJoinLikeView, hold_worker

urlpatterns = [
    *project_urlpatterns,
    path("test-only/throttled", ThrottledJoinLikeView.as_view()),
    path("test-only/hold", hold_worker),
]
