"""The request id of the current request, and the log formats that carry it.

Kept free of Django imports: ``LOGGING`` in settings refers to these classes,
and logging is configured while settings are still loading.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

# A contextvar, not a thread-local: each gunicorn thread (and any future async
# view) sees only its own request's id.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Ids a client or load balancer may pass in: short, and nothing that could
# break a log line or a header (no spaces, quotes or control characters).
_ACCEPTABLE_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from_header(value: str | None) -> str:
    """Keep a sane incoming ``X-Request-ID`` (to follow a request across services); else make one."""
    if value and _ACCEPTABLE_INCOMING_ID.match(value):
        return value
    return new_request_id()


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs some lines about a request after the middleware has
        # returned; those carry the request itself.
        request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = request_id
        # The guide's plain format stays unchanged outside requests (commands, backfill).
        record.request_tag = f"[{request_id}] " if request_id else ""
        return True


class RouteNotPathFilter(logging.Filter):
    """Django's own request lines (``django.request``) name the route pattern, not the path.

    Paths carry invite codes and ids; the access log and every other line of
    ours name the pattern only, and these lines now do too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and isinstance(record.args, tuple):
            from operations.middleware import route_label  # Django-side; imported once logging runs

            path = request.path.encode("unicode_escape").decode("ascii")
            record.args = tuple(route_label(request) if arg == path else arg for arg in record.args)
        return True


class OneLineWarningFilter(logging.Filter):
    """A line about a client's mistake (a bad Host header): one WARNING line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (``LOG_FORMAT=json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for extra_field in ("method", "route", "status", "duration_ms"):
            if hasattr(record, extra_field):
                entry[extra_field] = getattr(record, extra_field)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
