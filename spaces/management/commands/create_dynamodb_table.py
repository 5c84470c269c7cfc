from typing import Any

from django.core.management.base import BaseCommand, CommandError

from spaces.dynamodb import table_name as current_table
from spaces.exceptions import DynamoUnavailable
from spaces.table import table_create_if_missing


class Command(BaseCommand):
    help = "Create the DynamoDB table (PK/SK, GSI1, on-demand) and its -security table if missing; wait until active."

    def handle(self, *args: Any, **options: Any) -> None:
        table_name = current_table()
        try:
            created = table_create_if_missing()
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from exc
        done = "Created table {!r}; it is active." if created else "Table {!r} already exists; nothing to do."
        self.stdout.write(done.format(table_name))
