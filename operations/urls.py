"""Probe and metrics URLs (included at the root by ``lifestyle_spaces.urls``)."""

from django.urls import path

from operations import health, views

urlpatterns = [
    # ProbeMiddleware answers these first; the patterns keep them reversible and listed.
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
]
