"""``/``: where to go from here; the API docs only for whom ``API_DOCS`` serves them."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    docs = settings.API_DOCS == "public" or (settings.API_DOCS == "staff" and request.user.is_staff)
    return render(request, "web/home.html", {"api_docs": docs})
