"""moto's DynamoDB as a WSGI app, for a server that keeps connections alive.

moto's own server (werkzeug's development server) closes the connection after
every response, so each call would pay a new TCP connection: real DynamoDB
keeps HTTPS connections alive, and so does the benchmark's server (gunicorn,
one process so moto's state is shared, many threads).
"""

from moto.server import DomainDispatcherApplication, create_backend_app

app = DomainDispatcherApplication(create_backend_app)
