from typing import Any
from urllib.parse import urlparse

from django.core.management.base import BaseCommand, CommandError

from devtools.demo import seed_demo
from spaces.dynamodb import TableItem
from spaces.exceptions import DynamoUnavailable

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Command(BaseCommand):
    help = (
        "Seed demo users and spaces (embedded DynamoDB on 127.0.0.1 only). Idempotent: users are created "
        "if missing, spaces only once per table. Prints the id of the walk-through space last."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        host = urlparse(TableItem.Meta.host or "").hostname
        if host not in LOOPBACK_HOSTS:
            raise CommandError(
                "seed_demo only runs against the embedded DynamoDB (DYNAMODB_HOST on 127.0.0.1): "
                "it creates users with weak passwords.",
                returncode=2,
            )
        try:
            seeded = seed_demo()
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if seeded.created:
            self.stdout.write(", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in seeded.counts.items()))
        else:
            self.stdout.write("The demo data is already there; nothing added.")
        self.stdout.write(f"walkthrough space: {seeded.walkthrough_space_id}")
