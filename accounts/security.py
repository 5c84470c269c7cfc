"""Sign-in lockouts, token revocations and throttles in the ``<DYNAMODB_TABLE>-security`` table (README: why).

TTL deletes late, so a counter's window is in its key; each count is one conditional write; an outage is a 503."""

import hashlib
import math
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.connection import TableConnection
from pynamodb.exceptions import DoesNotExist, PynamoDBException
from pynamodb.models import Model
from rest_framework import throttling

from spaces.dynamodb import SECURITY_TABLE_SUFFIX, is_condition_failure, short_reason, table_connection
from spaces.exceptions import DynamoUnavailable
from spaces.transactions import Transaction, TransactionCancelled


class SecurityItem(Model):
    """A counter of one fixed window (``n``) or a revocation (``revoked_before``); ``expires`` is the table's TTL."""

    class Meta:
        table_name = settings.DYNAMODB_TABLE + SECURITY_TABLE_SUFFIX  # the connection follows the models' table

    pk = UnicodeAttribute(hash_key=True, attr_name="PK")
    n = NumberAttribute(null=True)
    revoked_before = NumberAttribute(null=True)
    expires = TTLAttribute(null=True)

    @classmethod
    def _get_connection(cls) -> TableConnection:
        return table_connection(security=True)  # the one shared botocore client (spaces.dynamodb)


class SecurityStoreUnavailable(DynamoUnavailable):
    """The security table cannot answer: 503 everywhere (regenerate's own 500 is for its own write only)."""


@contextmanager
def _store() -> Iterator[None]:
    """Any failure but a false condition or a missing item is an outage: the caller answers 503, skips no check."""
    try:
        yield
    except (PynamoDBException, DynamoUnavailable) as exc:
        if isinstance(exc, DoesNotExist | SecurityStoreUnavailable) or is_condition_failure(exc):
            raise
        raise SecurityStoreUnavailable(f"the security table cannot be reached or used: {short_reason(exc)}") from exc


def _window(seconds: int) -> tuple[int, datetime, int]:
    now = time.time()
    number = int(now // seconds)
    return number, datetime.fromtimestamp((number + 1) * seconds, UTC), max(1, math.ceil((number + 1) * seconds - now))


def _counter(kind: str, value: str, window: int) -> SecurityItem:
    return SecurityItem(f"{kind}#{hashlib.sha256(value.encode()).hexdigest()}#{window}")


def _count(by: int, end: datetime, limit: int) -> dict[str, Any]:
    """``ADD n by`` in the window ending at ``end``; an addition only while ``n`` is under ``limit``."""
    room = SecurityItem.n.does_not_exist() | (SecurityItem.n < limit) if by > 0 else None
    return {"actions": [SecurityItem.n.add(by), SecurityItem.expires.set(end)], "condition": room}


def take(key: str, limit: int, window_seconds: int) -> int:
    """One conditional ``ADD``: 0 if within ``limit`` requests in the current window, else seconds until it ends."""
    number, end, wait = _window(window_seconds)
    try:
        with _store():
            _counter("THROTTLE", key, number).update(**_count(1, end, limit))
    except PynamoDBException:  # only a false condition gets here: the window is full
        return wait
    return 0


class AtomicRateThrottle(throttling.SimpleRateThrottle):
    """DRF's rates, scopes and keys, counted by :func:`take` (fixed windows: up to twice the rate across a boundary)."""

    seconds_to_wait = 0

    def allow_request(self, request: Any, view: Any) -> bool:
        key = self.get_cache_key(request, view) if self.rate is not None else None
        limit, seconds = self.parse_rate(self.rate)
        if key is None or limit is None or seconds is None:
            return True
        self.seconds_to_wait = take(key, limit, seconds)
        return not self.seconds_to_wait

    def wait(self) -> float | None:
        return self.seconds_to_wait or None


class AtomicScopedRateThrottle(throttling.ScopedRateThrottle, AtomicRateThrottle):
    """DRF's ``ScopedRateThrottle`` (the view's ``throttle_scope``, per user), counted atomically."""


def client_address(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it (``NUM_PROXIES`` hops of X-Forwarded-For trusted)."""
    return str(throttling.BaseThrottle().get_ident(request))  # type: ignore[arg-type]  # DRF reads only META


def _sign_in_add(counters: dict[str, tuple[SecurityItem, int]], by: int, end: datetime) -> bool:
    """Add ``by`` to every counter in one transaction; False (nothing applied) when a reservation finds one full."""
    tx = Transaction()
    for kind, (counter, limit) in counters.items():
        tx.update(kind, counter, **_count(by, end, limit))
    try:
        with _store():
            tx.commit()
    except TransactionCancelled:  # a counter is full (or DynamoDB refused the reservation: refused, too)
        return False
    return True


@contextmanager
def password_check(*, username: str, request: HttpRequest) -> Iterator[int]:
    """Reserve an attempt on the username's and the address's counters: yields 0, else the lockout's seconds left.

    A block that ends without an exception (a sign-in) gives it back; a failure keeps it: at most the limit of
    passwords is checked per username and per address in a window, however many arrive at once."""
    number, end, wait = _window(settings.LOGIN_LOCKOUT_SECONDS)
    name = unicodedata.normalize("NFKC", username.strip()).casefold()  # as Django's sign-in form cleans it, casefolded
    counters = {
        "username": (_counter("LOGIN#username", name, number), settings.LOGIN_FAILURES_PER_USERNAME),
        "address": (_counter("LOGIN#address", client_address(request), number), settings.LOGIN_FAILURES_PER_ADDRESS),
    }
    if not _sign_in_add(counters, 1, end):
        yield wait
        return
    yield 0
    _sign_in_add(counters, -1, end)


def revoke_tokens_issued_before(user_id: str, moment: datetime) -> None:
    """Access tokens of ``user_id`` issued before ``moment`` stop working (kept as long as such a token lives)."""
    lifetime = cast(timedelta, settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]) + timedelta(seconds=60)  # clock skew
    with _store():
        SecurityItem(f"REVOKED#{user_id}", revoked_before=moment.timestamp(), expires=timezone.now() + lifetime).save()


def tokens_revoked_before(user_id: str) -> float | None:
    """The moment before which the user's access tokens no longer count, if one is recent: one consistent read."""
    try:
        with _store():
            return SecurityItem.get(f"REVOKED#{user_id}", consistent_read=True).revoked_before
    except DoesNotExist:
        return None


@receiver(post_delete, sender="accounts.User", dispatch_uid="accounts-revoke-deleted")
def revoke_tokens_of_deleted_user(sender: Any, instance: Any, **_: Any) -> None:
    revoke_tokens_issued_before(str(instance.pk), timezone.now())
