"""A TCP forwarder on 127.0.0.1: the DynamoDB endpoint the failure benchmark can stop and start.

Stopping moto's server itself would lose its in-memory table, unlike a real
DynamoDB outage; killing this process instead makes the endpoint refuse and
reset connections exactly as a dead server does, while the data survives.

    python -m benchmarks.tcp_forwarder --listen 9001 --target 8001
"""

from __future__ import annotations

import argparse
import selectors
import socket
import threading


def _pipe(client: socket.socket, target_port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", target_port), timeout=5)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(client, selectors.EVENT_READ, upstream)
    selector.register(upstream, selectors.EVENT_READ, client)
    try:
        while True:
            for key, _ in selector.select():
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]  # only sockets are registered
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        selector.close()
        client.close()
        upstream.close()


def serve(listen_port: int, target_port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Restarted on the same port right after being killed.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(128)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_pipe, args=(client, target_port), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    args = parser.parse_args()
    serve(args.listen, args.target)


if __name__ == "__main__":
    main()
