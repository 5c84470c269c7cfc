"""One all-or-nothing write: DynamoDB's ``TransactWriteItems``, with each action named by its role.

Every write of the engine is one :class:`Transaction`: up to 100 puts,
updates, deletes and condition checks, each with its own condition, applied
together or not at all. PynamoDB's ``TransactWrite`` sends its actions grouped
by kind (checks, deletes, puts, updates), so DynamoDB's cancellation reasons,
which come back one per action in request order, would have to be matched
back by position; here the actions keep the order and the name the service
gave them, and a cancellation hands back its reasons by name
(``cancelled.failed("claim")``), with the item as it was when
``return_old_on_failure`` asked for it.

Retries:

* botocore retries a call whose answer was lost (a reset connection, a read
  timeout) with the same ``ClientRequestToken``, which DynamoDB uses to apply
  a transaction at most once within ten minutes: a retry of a transaction that
  was applied answers success without applying it again.
* Real DynamoDB cancels a transaction that meets another one on the same item
  with ``TransactionConflict`` (and may cancel for throttling); botocore does
  not retry a cancellation. When every reason is of that kind, nothing was
  applied and nothing was refused, so :meth:`Transaction.commit` tries again,
  a bounded number of times with jittered exponential backoff, then gives up
  with :class:`~spaces.dynamodb.DynamoBusy` (a 503 for the API).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb import constants
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model

from operations import metrics
from spaces.dynamodb import DynamoBusy, error_code, table_connection

MAX_ACTIONS = 100  # DynamoDB's limit per TransactWriteItems

CONDITION_FAILED = "ConditionalCheckFailed"
# Cancellations that say "try again later", not "your condition is false".
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
TRANSIENT_RETRIES = 5
BACKOFF_BASE_SECONDS = 0.02
BACKOFF_CAP_SECONDS = 1.0

ActionName = Hashable


@dataclass(frozen=True)
class Reason:
    """Why DynamoDB refused one action of a cancelled transaction."""

    code: str
    message: str | None = None
    # The item as it was, when the action asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD)
    # and the item existed.
    old_item: dict[str, Any] | None = None


class TransactionCancelled(Exception):
    """DynamoDB cancelled the transaction: nothing of it was applied.

    ``reasons`` maps the name of each refused action to its :class:`Reason`;
    actions that were not the cause are absent.
    """

    def __init__(self, reasons: dict[ActionName, Reason]) -> None:
        codes = ", ".join(f"{name}: {reason.code}" for name, reason in reasons.items())
        super().__init__(f"transaction cancelled ({codes})")
        self.reasons = reasons

    def failed(self, name: ActionName) -> bool:
        """True when the named action's condition was false."""
        reason = self.reasons.get(name)
        return reason is not None and reason.code == CONDITION_FAILED

    def old_item(self, name: ActionName) -> dict[str, Any] | None:
        reason = self.reasons.get(name)
        return reason.old_item if reason is not None else None

    @property
    def transient(self) -> bool:
        return bool(self.reasons) and all(reason.code in TRANSIENT_REASONS for reason in self.reasons.values())


class Transaction:
    """Actions collected in order, committed as one ``TransactWriteItems``."""

    def __init__(self) -> None:
        self._names: list[ActionName] = []
        self._actions: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._actions)

    def put(
        self,
        name: ActionName,
        item: Model,
        *,
        condition: Condition | None = None,
        return_old_on_failure: bool = False,
    ) -> None:
        params = item.get_save_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure=_all_old(return_old_on_failure)
        )
        self._add(name, constants.TRANSACT_PUT, params)

    def update(
        self,
        name: ActionName,
        item: Model,
        actions: Sequence[Action],
        *,
        condition: Condition | None = None,
        return_old_on_failure: bool = False,
    ) -> None:
        params = item.get_update_kwargs_from_instance(
            actions=list(actions),
            condition=condition,
            return_values_on_condition_failure=_all_old(return_old_on_failure),
        )
        self._add(name, constants.TRANSACT_UPDATE, params)

    def delete(self, name: ActionName, item: Model, *, condition: Condition | None = None) -> None:
        self._add(name, constants.TRANSACT_DELETE, item.get_delete_kwargs_from_instance(condition=condition))

    def check(
        self, name: ActionName, item: Model, condition: Condition, *, return_old_on_failure: bool = False
    ) -> None:
        """A condition on an item (only its key is used) that the transaction does not write."""
        # A ConditionCheck takes exactly what a DeleteItem takes: the key and the condition.
        params = item.get_delete_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure=_all_old(return_old_on_failure)
        )
        self._add(name, constants.TRANSACT_CONDITION_CHECK, params)

    def _add(self, name: ActionName, kind: str, params: dict[str, Any]) -> None:
        if name in self._names:
            raise ValueError(f"two actions named {name!r} in one transaction")
        if len(self._actions) >= MAX_ACTIONS:
            raise ValueError(f"a transaction takes at most {MAX_ACTIONS} actions")
        self._names.append(name)
        self._actions.append({kind: params})

    def commit(self) -> None:
        """Apply every action or none; raises :class:`TransactionCancelled` with the reasons.

        Other failures are PynamoDB's ``TransactWriteError`` (the services turn
        an unreachable DynamoDB into ``DynamoUnavailable``).
        """
        if not self._actions:
            return
        connection = table_connection().connection
        for attempt in range(TRANSIENT_RETRIES + 1):
            # A new token per attempt: a cancelled transaction applied nothing, so the
            # next attempt is a new request; botocore's own retries keep this one's token.
            request = {constants.TRANSACT_ITEMS: self._actions, constants.CLIENT_REQUEST_TOKEN: str(uuid.uuid4())}
            try:
                connection.dispatch(constants.TRANSACT_WRITE_ITEMS, request)
                return
            except Exception as exc:
                cancelled = self._cancellation(exc)
                if cancelled is None:
                    raise TransactWriteError("Failed to write transaction items", exc) from exc
                if not cancelled.transient:
                    raise cancelled from None
                if attempt == TRANSIENT_RETRIES:
                    raise DynamoBusy(
                        f"DynamoDB cancelled the transaction {attempt + 1} times ({cancelled}); try again later"
                    ) from cancelled
                for reason in {reason.code for reason in cancelled.reasons.values()}:
                    metrics.transaction_retries.labels(reason=reason).inc()
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))

    def _cancellation(self, exc: Exception) -> TransactionCancelled | None:
        if error_code(exc) != "TransactionCanceledException":
            return None
        reasons: dict[ActionName, Reason] = {}
        for name, reason in zip(self._names, getattr(exc, "cancellation_reasons", []), strict=False):
            if reason is not None:
                reasons[name] = Reason(reason.code, reason.message, reason.raw_item)
        return TransactionCancelled(reasons)


def _all_old(wanted: bool) -> str | None:
    return constants.ALL_OLD if wanted else None
