"""The production settings, plus a test-only urlconf and a header naming the worker process."""

from lifestyle_spaces.settings import *  # noqa: F403
from lifestyle_spaces.settings import MIDDLEWARE

ROOT_URLCONF = "tests.ops_site.urls"
MIDDLEWARE = ["tests.ops_site.views.worker_pid_middleware", *MIDDLEWARE]
