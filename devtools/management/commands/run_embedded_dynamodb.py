"""``manage.py run_embedded_dynamodb --port N``: the embedded DynamoDB in the foreground."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devtools.embedded_dynamodb import PortInUse, run_in_foreground


class Command(BaseCommand):
    help = (
        "Serve moto's DynamoDB (with the project's patch, devtools/moto_patches.py) on 127.0.0.1 "
        "in the foreground until Ctrl-C. Data lives in memory and is gone when it stops. "
        "Exit status: 0 after Ctrl-C, 2 when the port is taken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("DYNAMODB_PORT", "8001")),
            help="TCP port on 127.0.0.1 (default: DYNAMODB_PORT or 8001).",
        )
        parser.add_argument(
            "--threads", type=int, default=32, help="Connections served at once (requests still apply one by one)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        port, threads = options["port"], options["threads"]
        if not 1 <= port <= 65535 or threads < 1:
            raise CommandError("--port must be 1-65535 and --threads at least 1", returncode=2)
        self.stdout.write(f"Embedded DynamoDB on http://127.0.0.1:{port} (Ctrl-C stops it)")
        self.stdout.flush()
        try:
            run_in_foreground(port, threads=threads)
        except PortInUse as exc:
            raise CommandError(str(exc), returncode=2) from None
