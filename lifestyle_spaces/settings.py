"""Settings from the environment (the README lists every variable); without debug, a real secret key is required."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return raw in {"1", "true", "yes", "on"} if raw else default


def env_number(name: str, default: Any) -> Any:
    """An int or a float from the environment, as ``default`` is; a clear error for anything else."""
    raw = os.environ.get(name, "").strip()
    try:
        return type(default)(raw) if raw else default
    except ValueError as exc:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise ImproperlyConfigured(f"{name} must be {kind}, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY and DEBUG:
    # Marked insecure so that `check --deploy` flags it should it ever reach production.
    SECRET_KEY = "django-insecure-local-development-only-not-a-secret"  # noqa: S105
# The same bar as Django's security.W009 check.
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random string of at least 50 characters when DJANGO_DEBUG is off "
        "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",  # used refresh tokens are blacklisted
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files from a pinned package, not a CDN
    "accounts",
    "spaces",
    "invites",
    "operations",
    "web",
]
if DEBUG:  # the embedded DynamoDB; its packages are not installed in production
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    "operations.middleware.RequestContextMiddleware",  # outermost: ids, access log and metrics cover all below
    "operations.health.ProbeMiddleware",  # probes answered before host validation and the HTTPS redirect
    "lifestyle_spaces.api_limits.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

# Everything from this origin; inline style attributes (Swagger UI and the admin set some), no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        **dict.fromkeys(("script-src", "connect-src", "font-src", "base-uri", "form-action"), ("'self'",)),
        **dict.fromkeys(("object-src", "frame-ancestors"), ("'none'",)),
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
    }
}

ROOT_URLCONF = "lifestyle_spaces.urls"
WSGI_APPLICATION = "lifestyle_spaces.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Django's own tables (users, sessions, admin log). No persistent connections: gevent would keep one per greenlet.
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}Validator"}
    for name in ("UserAttributeSimilarity", "MinimumLength", "CommonPassword", "NumericPassword")
]

TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")


# --- DynamoDB ---
DYNAMODB_TABLE = os.environ.get("DYNAMODB_TABLE", "lifestyle-spaces")
AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
# Unset means real AWS; set it to the embedded moto server's URL for local work.
DYNAMODB_HOST = os.environ.get("DYNAMODB_HOST") or None
# Short: a request should fail fast rather than hang on a dead endpoint.
DYNAMODB_CONNECT_TIMEOUT = env_number("DYNAMODB_CONNECT_TIMEOUT", 2.0)
DYNAMODB_READ_TIMEOUT = env_number("DYNAMODB_READ_TIMEOUT", 5.0)
# botocore's retry mode: "adaptive" adds client-side rate limiting (for a backfill).
DYNAMODB_RETRY_MODE = os.environ.get("DYNAMODB_RETRY_MODE", "standard")
DYNAMODB_MAX_ATTEMPTS = env_number("DYNAMODB_MAX_ATTEMPTS", 4)
DYNAMODB_MAX_POOL_CONNECTIONS = env_number("DYNAMODB_MAX_POOL_CONNECTIONS", 16)
# Each scan is read as this many segments in turn: 64 or more for big tables in DynamoDB Local (docs/backfill.md).
DYNAMODB_SCAN_SPLIT = env_number("DYNAMODB_SCAN_SPLIT", 1)
# Refused here, with one line, rather than as a traceback from botocore on the first call.
if DYNAMODB_HOST and not (urlparse(DYNAMODB_HOST).scheme in {"http", "https"} and urlparse(DYNAMODB_HOST).hostname):
    raise ImproperlyConfigured(f"DYNAMODB_HOST must be a URL such as http://127.0.0.1:8001, got {DYNAMODB_HOST!r}")
if DYNAMODB_RETRY_MODE not in {"standard", "adaptive", "legacy"}:
    raise ImproperlyConfigured(f"DYNAMODB_RETRY_MODE must be standard, adaptive or legacy, got {DYNAMODB_RETRY_MODE!r}")
for _name in ("DYNAMODB_MAX_ATTEMPTS", "DYNAMODB_SCAN_SPLIT"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1, got {globals()[_name]}")

if DYNAMODB_HOST and not os.environ.get("AWS_ACCESS_KEY_ID"):
    # botocore will not sign without credentials; the embedded DynamoDB takes any, so these are no secrets.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "embedded")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")

INVITE_URL_BASE = os.environ.get("INVITE_URL_BASE", "/join/")
INVITE_CODE_MAX_ATTEMPTS = env_number("INVITE_CODE_MAX_ATTEMPTS", 8)

# Requests to the join page per client address (every request counts), against code guessing.
THROTTLE_JOIN_PAGE = os.environ.get("THROTTLE_JOIN_PAGE", "10/min")
LOGIN_URL = "account:login"
BACKFILL_WORKERS = env_number("BACKFILL_WORKERS", 8)  # threads writing codes (docs/backfill.md)

# The admin's pages (docs/admin.md); its backfill page does about this many spaces and seconds per request.
ADMIN_SPACES_PER_PAGE = env_number("ADMIN_SPACES_PER_PAGE", 50)
ADMIN_BACKFILL_PER_REQUEST = env_number("ADMIN_BACKFILL_PER_REQUEST", 500)
ADMIN_BACKFILL_SECONDS = env_number("ADMIN_BACKFILL_SECONDS", 4.0)
# A clean-up after a leaked code (API and admin) removes about this many members and seconds per request.
MEMBERS_CLEANUP_PER_REQUEST = env_number("MEMBERS_CLEANUP_PER_REQUEST", 2000)
MEMBERS_CLEANUP_SECONDS = env_number("MEMBERS_CLEANUP_SECONDS", 4.0)

# --- REST API: JSON in and out, stateless tokens ---
API_MAX_BODY_BYTES = env_number("API_MAX_BODY_BYTES", 64 * 1024)  # larger bodies get 413 before they are read
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.RevocableJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["lifestyle_spaces.api_limits.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "lifestyle_spaces.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "invite_join": os.environ.get("THROTTLE_INVITE_JOIN", "10/min"),
        "invite_preview": os.environ.get("THROTTLE_INVITE_PREVIEW", "10/min"),
        # Claims are permanent: creating spaces and regenerating codes grow the table for good.
        "space_create": os.environ.get("THROTTLE_SPACE_CREATE", "10/min"),
        "invite_regenerate": os.environ.get("THROTTLE_INVITE_REGENERATE", "10/min"),
        # Removing, blocking, roles, ownership, clean-up: one rate, counted per endpoint.
        **dict.fromkeys(
            ("member_remove", "member_role", "owner_transfer", "member_block", "members_cleanup"),
            os.environ.get("THROTTLE_MEMBER_CHANGES", "30/min"),
        ),
    },
    "UNAUTHENTICATED_USER": None,
    # Proxies in front of us that append to X-Forwarded-For (0: REMOTE_ADDR); unset, any client could vary it.
    "NUM_PROXIES": env_number("TRUSTED_PROXY_COUNT", 0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_number("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_number("JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# Failed sign-ins per username and per address in each fixed window of LOGIN_LOCKOUT_SECONDS; past either limit,
# no password is checked until the window ends. Counted in the <DYNAMODB_TABLE>-security table (accounts.security).
LOGIN_FAILURES_PER_USERNAME = env_number("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURES_PER_ADDRESS = env_number("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_LOCKOUT_SECONDS = env_number("LOGIN_LOCKOUT_SECONDS", 900)

# The OpenAPI schema and Swagger UI: "public", "staff" (signed in to the admin) or "off".
API_DOCS = os.environ.get("API_DOCS", "public" if DEBUG else "off").strip().lower()
if API_DOCS not in {"public", "staff", "off"}:
    raise ImproperlyConfigured(f"API_DOCS must be 'public', 'staff' or 'off', got {API_DOCS!r}")

SPECTACULAR_SETTINGS = {
    "TITLE": "Lifestyle Spaces API",
    **dict.fromkeys(("SWAGGER_UI_DIST", "SWAGGER_UI_FAVICON_HREF", "REDOC_DIST"), "SIDECAR"),
    "DESCRIPTION": "Spaces, invite codes and joining.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["lifestyle_spaces.api_schema.strip_trailing_slashes"],
    "ENUM_NAME_OVERRIDES": {
        "MemberRoleEnum": "spaces.models.ROLES_OWNERS_GIVE",
        "CodeRoleEnum": "spaces.models.ROLES_CODES_GRANT",
    },
}

READINESS_TIMEOUT = env_number("READINESS_TIMEOUT", 1.0)  # /readyz: one attempt, no retries
# /metrics requires "Authorization: Bearer <METRICS_TOKEN>"; unset, it exists only in debug mode.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Load balancers probe over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_number("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# "plain" (the guide's format, "[<request id>] " inside a request) or "json" (one object a line).
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "operations.log_context.RequestIdFilter"},
        "route_not_path": {"()": "operations.log_context.RouteNotPathFilter"},
        "one_line_warning": {"()": "operations.log_context.OneLineWarningFilter"},
        "route_not_target": {"()": "lifestyle_spaces.server_logs.RouteNotTargetFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s - %(levelname)s - %(request_tag)s%(message)s"},
        "json": {"()": "operations.log_context.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # 4xx lines repeat our access line; 5xx stay, naming the route, not the path.
        "django.request": {"level": "ERROR", "filters": ["route_not_path"]},
        # A bad Host header is the client's mistake: one WARNING line, no traceback.
        "django.security.DisallowedHost": {"level": "WARNING", "filters": ["one_line_warning"]},
        "django.server": {"handlers": ["console"], "filters": ["route_not_target"], "propagate": False},
        "botocore": {"level": "WARNING"},
        "pynamodb": {"level": "WARNING"},
    },
}
