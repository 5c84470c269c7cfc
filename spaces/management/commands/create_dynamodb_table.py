from typing import Any

from django.core.management.base import BaseCommand, CommandError

from spaces.dynamodb import table_name as current_table
from spaces.exceptions import DynamoUnavailable
from spaces.table import table_create_if_missing


class Command(BaseCommand):
    help = "Create the DynamoDB table (PK/SK, GSI1, on-demand) if it is missing and wait until it is active."

    def handle(self, *args: Any, **options: Any) -> None:
        table_name = current_table()
        try:
            created = table_create_if_missing()
        except DynamoUnavailable as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if created:
            self.stdout.write(f"Created table {table_name!r}; it is active.")
        else:
            self.stdout.write(f"Table {table_name!r} already exists; nothing to do.")
