"""Settings for lifestyle_spaces, read from the environment (12-factor).

Every knob an operator may turn is an environment variable; the README lists
them. Debug mode is off unless ``DJANGO_DEBUG`` says otherwise, and with debug
off the process refuses to start without a real ``DJANGO_SECRET_KEY``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

# Only debug mode may fall back to a fixed key: it is marked insecure on purpose
# so that `check --deploy` flags it should it ever reach production.
_DEV_SECRET_KEY = "django-insecure-local-development-only-not-a-secret"  # noqa: S105
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")


def _is_real_secret(key: str) -> bool:
    # The same bar as Django's security.W009 check.
    return len(key) >= 50 and len(set(key)) >= 5 and not key.startswith("django-insecure-")


if not SECRET_KEY and DEBUG:
    SECRET_KEY = _DEV_SECRET_KEY
if not DEBUG and not _is_real_secret(SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random string of at least 50 characters "
        "when DJANGO_DEBUG is off (generate one with: python -c "
        "'import secrets; print(secrets.token_urlsafe(64))')."
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
    # Refresh tokens are rotated and the used ones blacklisted.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    # Swagger UI's scripts and styles served from a pinned package, not a CDN.
    "drf_spectacular_sidecar",
    "accounts",
    "spaces",
    "invites",
    "operations",
    # The server-rendered pages people use (the join page and its sign-in).
    "web",
]
if DEBUG:
    # Development tooling (the embedded DynamoDB); its packages are not installed in production.
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # Outermost: request id, access log and request metrics cover everything below.
    "operations.middleware.RequestContextMiddleware",
    # Load balancer probes are answered before host validation and the HTTPS redirect.
    "operations.health.ProbeMiddleware",
    # API bodies over API_MAX_BODY_BYTES (or of unannounced length) are refused before they are read.
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

# One Content-Security-Policy for the API (JSON), the docs (Swagger UI) and the admin: everything
# from this origin; inline style attributes only (Swagger UI and the admin set some), no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "lifestyle_spaces.urls"
WSGI_APPLICATION = "lifestyle_spaces.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Django's own tables (users, sessions, admin log). Spaces live in DynamoDB.
DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the admin's files for WhiteNoise (make serve runs it).
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or BASE_DIR / "staticfiles")


def _cache_from_url(url: str) -> dict[str, object]:
    """Map CACHE_URL to a Django cache backend.

    Throttle counters must be shared by every worker, so the default is a file
    cache on local disk, never per-process memory (``locmem://`` exists for
    tests only).
    """
    parsed = urlparse(url)
    if parsed.scheme in {"redis", "rediss"}:
        # Django's own Redis cache (redis-py): shared by every process and instance. Short
        # timeouts: a request must not hang on a dead Redis, and /readyz reports it.
        timeout = env_float("CACHE_TIMEOUT", 1.0)
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": timeout, "socket_timeout": timeout},
        }
    if parsed.scheme == "file":
        return {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": parsed.path}
    if parsed.scheme == "db":
        return {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": parsed.netloc or "django_cache"}
    if parsed.scheme == "locmem":
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": parsed.netloc}
    raise ImproperlyConfigured(f"CACHE_URL scheme {parsed.scheme!r} is not supported (redis, file, db, locmem)")


CACHES = {"default": _cache_from_url(os.environ.get("CACHE_URL", f"file://{BASE_DIR / '.run' / 'cache'}"))}

# --- DynamoDB -----------------------------------------------------------------
DYNAMODB_TABLE = os.environ.get("DYNAMODB_TABLE", "lifestyle-spaces")
AWS_REGION = os.environ.get("AWS_REGION", "us-east-1")
# Unset means real AWS; set it to the embedded moto server's URL for local work.
DYNAMODB_HOST = os.environ.get("DYNAMODB_HOST") or None
# Short timeouts: a request should fail fast rather than hang on a dead endpoint.
DYNAMODB_CONNECT_TIMEOUT = env_float("DYNAMODB_CONNECT_TIMEOUT", 2.0)
DYNAMODB_READ_TIMEOUT = env_float("DYNAMODB_READ_TIMEOUT", 5.0)
# botocore retry mode: "standard" for the web app, "adaptive" adds client-side
# rate limiting, which the backfill turns on for itself.
DYNAMODB_RETRY_MODE = os.environ.get("DYNAMODB_RETRY_MODE", "standard")
DYNAMODB_MAX_ATTEMPTS = env_int("DYNAMODB_MAX_ATTEMPTS", 4)
DYNAMODB_MAX_POOL_CONNECTIONS = env_int("DYNAMODB_MAX_POOL_CONNECTIONS", 16)
# Refused here, with one line, rather than as a traceback from botocore on the first call.
if DYNAMODB_HOST and not (urlparse(DYNAMODB_HOST).scheme in {"http", "https"} and urlparse(DYNAMODB_HOST).hostname):
    raise ImproperlyConfigured(f"DYNAMODB_HOST must be a URL such as http://127.0.0.1:8001, got {DYNAMODB_HOST!r}")
if DYNAMODB_RETRY_MODE not in {"standard", "adaptive", "legacy"}:
    raise ImproperlyConfigured(f"DYNAMODB_RETRY_MODE must be standard, adaptive or legacy, got {DYNAMODB_RETRY_MODE!r}")
if DYNAMODB_MAX_ATTEMPTS < 1:
    raise ImproperlyConfigured(f"DYNAMODB_MAX_ATTEMPTS must be at least 1, got {DYNAMODB_MAX_ATTEMPTS}")

if DYNAMODB_HOST and not os.environ.get("AWS_ACCESS_KEY_ID"):
    # The embedded DynamoDB accepts any signature, but botocore refuses to sign
    # without credentials; these placeholders are not secrets.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "embedded")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "embedded")

# --- Invite codes ---------------------------------------------------------------
INVITE_URL_BASE = os.environ.get("INVITE_URL_BASE", "/join/")
INVITE_CODE_MAX_ATTEMPTS = env_int("INVITE_CODE_MAX_ATTEMPTS", 8)

# --- The join page (web/) -----------------------------------------------------------
# Requests to /join/<code> per client address (every request counts), against code guessing.
THROTTLE_JOIN_PAGE = os.environ.get("THROTTLE_JOIN_PAGE", "10/min")
# Django's own sign-in view with the guarded form; it sends people back to ?next= (this host only).
LOGIN_URL = "account:login"

# --- Backfill (docs/backfill.md) ------------------------------------------------------
BACKFILL_SEGMENTS = env_int("BACKFILL_SEGMENTS", 4)  # parallel scan segments
BACKFILL_WORKERS = env_int("BACKFILL_WORKERS", 8)  # threads writing codes
BACKFILL_PAGE_SIZE = env_int("BACKFILL_PAGE_SIZE", 1000)  # items read per scan page (bounds memory)
# Above this many spaces without a code, per-space log lines need -v 2.
BACKFILL_PER_SPACE_LOG_LIMIT = env_int("BACKFILL_PER_SPACE_LOG_LIMIT", 1000)
# How many workers (machines) a split backfill has, when --total-segments is not given: set it
# beside a Kubernetes Indexed Job's completions or an AWS Batch array's size (0: not split).
BACKFILL_TOTAL_SEGMENTS = env_int("BACKFILL_TOTAL_SEGMENTS", 0)

# --- Admin pages for spaces (docs/admin.md) ------------------------------------------------
ADMIN_SPACES_PER_PAGE = env_int("ADMIN_SPACES_PER_PAGE", 50)
# Spaces the admin's backfill page changes per request: keeps a request within seconds.
ADMIN_BACKFILL_PER_REQUEST = env_int("ADMIN_BACKFILL_PER_REQUEST", 500)
# No new chunk of 50 spaces starts after this many seconds of a backfill request.
ADMIN_BACKFILL_SECONDS = env_float("ADMIN_BACKFILL_SECONDS", 4.0)

# --- REST API -------------------------------------------------------------------
# The largest API request body accepted; larger ones get 413 before they are read.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 64 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Stateless: the token alone identifies the user, no database query.
        "api.authentication.RevocableJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # A JSON API: JSON in, JSON out (no form bodies, no browsable pages).
    "DEFAULT_PARSER_CLASSES": ["lifestyle_spaces.api_limits.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # One place turns engine errors into the documented responses (docs/api.md).
    "EXCEPTION_HANDLER": "lifestyle_spaces.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "invite_join": os.environ.get("THROTTLE_INVITE_JOIN", "10/min"),
        "invite_preview": os.environ.get("THROTTLE_INVITE_PREVIEW", "10/min"),
        # Claims are permanent: creating spaces and regenerating codes grow the table for good.
        "space_create": os.environ.get("THROTTLE_SPACE_CREATE", "10/min"),
        "invite_regenerate": os.environ.get("THROTTLE_INVITE_REGENERATE", "10/min"),
    },
    "UNAUTHENTICATED_USER": None,
    # Client addresses (per-address throttles, login lockouts): how many proxies in front of us
    # append to X-Forwarded-For. 0 trusts the header not at all (REMOTE_ADDR); behind one load
    # balancer, 1. Left unset, DRF would key on the whole header, which any client can vary.
    "NUM_PROXIES": env_int("TRUSTED_PROXY_COUNT", 0),
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
    # Each refresh hands out a new refresh token; the used one can never be used again.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "SIGNING_KEY": SECRET_KEY,
}

# Failed sign-ins (accounts.login_guard): past either limit, passwords are not checked for the lockout time.
LOGIN_FAILURES_PER_USERNAME = env_int("LOGIN_FAILURES_PER_USERNAME", 5)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 20)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)

# The OpenAPI schema and Swagger UI: "public", "staff" (signed in to the admin) or "off".
API_DOCS = os.environ.get("API_DOCS", "public" if DEBUG else "off").strip().lower()
if API_DOCS not in {"public", "staff", "off"}:
    raise ImproperlyConfigured(f"API_DOCS must be 'public', 'staff' or 'off', got {API_DOCS!r}")

SPECTACULAR_SETTINGS = {
    "TITLE": "Lifestyle Spaces API",
    # Swagger UI's files come from drf-spectacular-sidecar (pinned), served as our static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "DESCRIPTION": "Spaces, invite codes and joining.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The guide's paths have no trailing slash; the routes accept both.
    "PREPROCESSING_HOOKS": ["lifestyle_spaces.api_schema.strip_trailing_slashes"],
}

# --- Operations: probes and metrics -------------------------------------------------
# /readyz gives up after this many seconds (one attempt, no retries).
READINESS_TIMEOUT = env_float("READINESS_TIMEOUT", 1.0)
# /metrics requires "Authorization: Bearer <METRICS_TOKEN>"; unset, it exists only in debug mode.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Production hardening (debug off) ---------------------------------------------
# Load balancers probe over plain HTTP (patterns match the path without its leading slash).
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# --- Logging: the guide's line format on stdout ----------------------------------------
LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
# "plain" (the guide's format, with "[<request id>] " inside a request) or "json" (one object a line).
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
    },
    "formatters": {
        "plain": {"format": "%(asctime)s - %(levelname)s - %(request_tag)s%(message)s"},
        "json": {"()": "operations.log_context.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own 4xx warnings repeat our access line; 5xx stay, naming the route, not the path.
        "django.request": {"level": "ERROR", "filters": ["route_not_path"]},
        # A bad Host header is the client's mistake: one WARNING line, not a traceback at ERROR.
        "django.security.DisallowedHost": {"level": "WARNING", "filters": ["one_line_warning"]},
        "botocore": {"level": "WARNING"},
        "pynamodb": {"level": "WARNING"},
    },
}
