"""The servers' own log lines (runserver's requests, gunicorn's errors) name a request's route, never its path."""

import logging
import re

# A request target: a slash that starts a word (not one in a URL, nor in a route pattern put there before).
_TARGET = re.compile(r"(?<![^\s'\"])/[^\s'\"]*")


def _route(target: re.Match[str]) -> str:
    from django.urls import resolve  # not at import: gunicorn's master must not load Django (gunicorn.conf.py)

    try:
        return str(resolve(target.group().split("?", 1)[0]).route) or "/"
    except Exception:  # no such route, or Django not set up (gunicorn's master): no path either way
        return "<unmatched>"


class RouteNotTargetFilter(logging.Filter):
    """Paths and query strings carry invite codes (`/join/<code>`, `?code=`): each becomes its route pattern."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _TARGET.sub(_route, record.getMessage()), None
        return True
