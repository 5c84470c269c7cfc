"""WSGI entry point (gunicorn lifestyle_spaces.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lifestyle_spaces.settings")

application = get_wsgi_application()
