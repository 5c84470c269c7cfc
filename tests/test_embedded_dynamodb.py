"""The embedded DynamoDB must apply conditional writes atomically, as DynamoDB does."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from pynamodb.exceptions import PutError

from spaces.dynamodb import is_condition_failure
from spaces.models import CodeClaim

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("round_number", range(5))
def test_only_one_of_many_concurrent_conditional_puts_on_one_item_succeeds(
    dynamo_table: object, round_number: int
) -> None:
    barrier = threading.Barrier(16)

    def claim(index: int) -> bool:
        barrier.wait()
        try:
            CodeClaim.build(f"RACE{round_number}XYZ", f"space-{index}", "now").save(
                condition=CodeClaim.pk.does_not_exist()
            )
        except PutError as exc:
            assert is_condition_failure(exc)
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(claim, range(16)))

    assert outcomes.count(True) == 1
