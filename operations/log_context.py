"""The current request's id and the log formats that carry it; no Django import (logging is set up in settings)."""

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

# A contextvar, not a thread-local: each gunicorn thread (and any async view) sees only its own request's id.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# An id a client or load balancer passes in: short, and nothing that could break a log line or a header.
_ACCEPTABLE_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def request_id_from_header(value: str | None) -> str:
    """Keep a sane incoming ``X-Request-ID`` (to follow a request across services); else make one."""
    if value and _ACCEPTABLE_INCOMING_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Stamp every record with the current request id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs some lines after the middleware has returned; those carry the request itself.
        request_id = request_id_var.get() or getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = request_id
        # Outside a request (commands), the guide's plain format is unchanged.
        record.request_tag = f"[{request_id}] " if request_id else ""
        return True


class RouteNotPathFilter(logging.Filter):
    """Django's own request lines (``django.request``) name the route pattern, not the path (codes, ids)."""

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
