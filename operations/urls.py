from django.urls import path

from operations import health, metrics

urlpatterns = [
    # ProbeMiddleware answers the probes first; the patterns keep them reversible and listed.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
]
