"""The backfill: scan the table for spaces without an invite code and give them one.

Shared by ``manage.py backfill_invite_codes`` and the admin; both call
:func:`backfill_missing_codes` and only present its :class:`BackfillReport`.

* ``run.py``: the scan -> assign pipeline, :func:`backfill_missing_codes`;
* ``checkpoint.py``: the checkpoint file that lets a stopped run resume;
* ``rate_limit.py``: ``max_writes_per_second``, a token bucket and its botocore hook;
* ``report.py``: :class:`SpaceOutcome` per space and their tally, :class:`BackfillReport`.
"""

from invites.backfill.exceptions import BackfillConfigError
from invites.backfill.rate_limit import RateLimiter
from invites.backfill.report import BackfillReport, OutcomeStatus, SpaceOutcome
from invites.backfill.run import backfill_missing_codes

__all__ = [
    "BackfillConfigError",
    "BackfillReport",
    "OutcomeStatus",
    "RateLimiter",
    "SpaceOutcome",
    "backfill_missing_codes",
]
