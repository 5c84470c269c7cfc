"""Time the admin's space pages against the embedded moto server: ``python -m benchmarks.admin_pages [SPACES] [BARE]``.

Seeds a fresh table with SPACES spaces (BARE of them without a code; the
others with code, mapping and claim; each with an owner membership) through
BatchWriteItem, then requests each admin page once with Django's test client
as a superuser and prints the wall time and the DynamoDB calls per request.
Not part of ``make bench``; docs/admin.md quotes its output.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks.common import CallCounter, instrument_every_client


def main(spaces: int, bare: int) -> None:
    from devtools import embedded_dynamodb

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    database = os.path.join(tempfile.mkdtemp(prefix="admin-bench-"), "db.sqlite3")
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    server = embedded_dynamodb.start()
    try:
        # The process's one connection is made from settings on first use: a fresh table on this server.
        os.environ["DYNAMODB_HOST"] = server.endpoint_url
        os.environ["DYNAMODB_TABLE"] = f"admin-bench-{uuid.uuid4().hex[:8]}"
        _seed_and_time(spaces, bare)
    finally:
        server.stop()


def _seed_and_time(spaces: int, bare: int) -> None:
    import django

    django.setup()
    # Before the first client is made: every botocore client created from now on counts its calls.
    calls = CallCounter()
    instrument_every_client(latency=None, counter=calls)
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)

    from invites import codes
    from spaces.models import CodeClaim, InviteMapping, Membership, Space, utc_now_iso
    from spaces.table import table_create_if_missing

    table_create_if_missing()
    started = time.monotonic()
    now = utc_now_iso()
    items: list[Any] = []
    for number in range(spaces):
        space_id = uuid.uuid4().hex[:12]
        if number < bare:
            items.append(Space.build(space_id, name=f"Bare {number}", owner_id="legacy", created_at=now))
        else:
            code = codes.generate_code()
            items += [
                Space.build(space_id, name=f"Space {number}", owner_id="legacy", invite_code=code, created_at=now),
                InviteMapping.build(code, space_id, now),
                CodeClaim.build(code, space_id, now),
            ]
        items.append(Membership.build(space_id, "legacy", "owner", now))
    with Space.batch_write() as batch:  # seeding only: the product writes transactions
        for item in items:
            batch.save(item)
    print(f"seeded {spaces} spaces ({bare} without a code), {len(items)} items in {time.monotonic() - started:.1f} s")
    _time_pages(calls)


def _time_pages(calls: CallCounter) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", password="bench-pass-123"))

    def timed(label: str, request: Callable[[], Any]) -> Any:
        calls.clear()
        started = time.monotonic()
        response = request()
        elapsed_ms = (time.monotonic() - started) * 1000
        print(f"{label}: {elapsed_ms:.0f} ms, status {response.status_code}, calls {dict(calls.calls)}")
        return response

    base = "/admin/invites/dynamospace/"
    first = timed("list, first page", lambda: client.get(base))
    if first.context["next_url"]:
        timed("list, next page", lambda: client.get(base + first.context["next_url"]))
    timed("list, has_code=no", lambda: client.get(base, {"has_code": "no"}))
    timed("list, has_code=yes", lambda: client.get(base, {"has_code": "yes"}))
    rows = [row["space"] for row in first.context["cl"]["result_list"]]
    coded = next((space for space in rows if space.invite_code), None)
    if rows:
        timed("search by space id", lambda: client.get(base, {"q": rows[0].id}))
    if coded is not None:
        timed("search by invite code", lambda: client.get(base, {"q": coded.invite_code}))
        timed("detail page", lambda: client.get(f"{base}{coded.id}/change/"))
        timed(
            "regenerate (confirmed)",
            lambda: client.post(
                f"{base}{coded.id}/regenerate/", {"expected_code": coded.invite_code, "confirm": "yes"}
            ),
        )
    timed("backfill preview", lambda: client.get(base + "backfill/", {"preview": "1"}))
    ran = timed("backfill run", lambda: client.post(base + "backfill/"))
    summary = ran.context["summary"]
    if summary is not None:
        print(f"  scanned {summary.scanned}, missing {summary.missing}, updated {summary.updated}")
    audited = timed("audit run", lambda: client.get(base + "audit/", {"run": "1"}))
    if audited.context["report"] is not None:
        print(f"  {audited.context['report'].counts()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 200)
