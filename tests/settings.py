"""Settings of the test suite: the project's own settings, read from a test environment."""

import os

os.environ["DJANGO_DEBUG"] = "1"  # pytest-django still runs views with DEBUG off
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Fail fast in tests: a dead endpoint must not stall the suite.
os.environ.setdefault("DYNAMODB_CONNECT_TIMEOUT", "1")
os.environ.setdefault("DYNAMODB_READ_TIMEOUT", "10")

from lifestyle_spaces.settings import *  # noqa: F403

# Password hashing at full strength costs ~0.3 s a login; tests log in often.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
