"""One all-or-nothing write: ``TransactWriteItems`` with each action named by its role.

PynamoDB's ``TransactWrite`` groups actions by kind, so its cancellation reasons could only be matched by position;
here a cancellation hands back its reasons by name (``cancelled.failed("claim")``), with the old item when asked.
A cancellation made only of conflicts or throttling applied nothing: it is retried with jittered backoff.
"""

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
from spaces.dynamodb import error_code, table_connection
from spaces.exceptions import DynamoBusy

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
    old_item: dict[str, Any] | None = None  # as it was (ALL_OLD), when the action asked for it and it existed


class TransactionCancelled(Exception):
    """DynamoDB cancelled the transaction (nothing was applied); ``reasons`` by the refused actions' names."""

    def __init__(self, reasons: dict[ActionName, Reason]) -> None:
        codes = ", ".join(f"{name}: {reason.code}" for name, reason in reasons.items())
        super().__init__(f"transaction cancelled ({codes})")
        self.reasons = reasons

    def failed(self, name: ActionName) -> bool:
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

    def put(
        self, name: ActionName, item: Model, *, condition: Condition | None = None, return_old_on_failure: bool = False
    ) -> None:
        params = item.get_save_kwargs_from_instance(condition=condition)
        self._add(name, constants.TRANSACT_PUT, params, return_old_on_failure)

    def update(
        self,
        name: ActionName,
        item: Model,
        actions: Sequence[Action],
        *,
        condition: Condition | None = None,
        return_old_on_failure: bool = False,
    ) -> None:
        params = item.get_update_kwargs_from_instance(actions=list(actions), condition=condition)
        self._add(name, constants.TRANSACT_UPDATE, params, return_old_on_failure)

    def delete(self, name: ActionName, item: Model, *, condition: Condition | None = None) -> None:
        self._add(name, constants.TRANSACT_DELETE, item.get_delete_kwargs_from_instance(condition=condition))

    def check(
        self, name: ActionName, item: Model, condition: Condition, *, return_old_on_failure: bool = False
    ) -> None:
        """A condition on an item (only its key is used) that the transaction does not write."""
        # A ConditionCheck takes exactly what a DeleteItem takes: the key and the condition.
        params = item.get_delete_kwargs_from_instance(condition=condition)
        self._add(name, constants.TRANSACT_CONDITION_CHECK, params, return_old_on_failure)

    def _add(self, name: ActionName, kind: str, params: dict[str, Any], return_old: bool = False) -> None:
        if name in self._names:
            raise ValueError(f"two actions named {name!r} in one transaction")
        if len(self._actions) >= MAX_ACTIONS:
            raise ValueError(f"a transaction takes at most {MAX_ACTIONS} actions")
        if return_old:
            params[constants.RETURN_VALUES_ON_CONDITION_FAILURE] = constants.ALL_OLD
        self._names.append(name)
        self._actions.append({kind: params})

    def commit(self) -> None:
        """Apply every action or none; :class:`TransactionCancelled` with the reasons, else ``TransactWriteError``."""
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
        named = zip(self._names, getattr(exc, "cancellation_reasons", []), strict=False)
        return TransactionCancelled({name: Reason(r.code, r.message, r.raw_item) for name, r in named if r is not None})
