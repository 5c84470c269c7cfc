"""moto's DynamoDB as a WSGI app, for a server that keeps connections alive.

moto's own server (werkzeug's development server) closes the connection after
every response, so each call would pay a new TCP connection: real DynamoDB
keeps HTTPS connections alive, and so does the benchmark's server (gunicorn,
one process so moto's state is shared, many threads for the connections).

moto is not thread-safe: a Scan iterating the table while a PutItem adds a
partition fails with a 500 ("dictionary changed size during iteration"), and
on a 60,000-item table nearly every page would. Requests are therefore served
one at a time; moto holds the GIL for nearly all of a request anyway, so this
costs little throughput. Real DynamoDB has no such limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app

_moto = DomainDispatcherApplication(create_backend_app)
_one_at_a_time = threading.Lock()


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    with _one_at_a_time:
        # Materialise the body inside the lock: moto builds it while serving.
        return list(_moto(environ, start_response))
