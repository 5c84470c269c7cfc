"""The backfill: scan the table for spaces without an invite code and give them one.

Shared by ``manage.py backfill_invite_codes`` and the admin; both call
:func:`backfill_missing_codes` and only present its :class:`BackfillReport`.

* ``run.py``: the scan -> assign pipeline, :func:`backfill_missing_codes`;
* ``pipeline.py``: the work on each page (assign, replace legacy codes, record) and its tally;
* ``job.py``: the arguments of one backfill, their bounds and checks;
* ``checkpoint.py``: the checkpoint file that lets a stopped run resume on one machine;
* ``run_state.py``: a run's progress in DynamoDB (``--run NAME``), shared by workers on any machine;
* ``placement.py``: a worker's segment from the flags or the scheduler (Kubernetes, AWS Batch);
* ``processes.py``: ``--processes P``, worker processes on one machine;
* ``rate_limit.py``: ``max_writes_per_second``, a token bucket and its botocore hook;
* ``report.py``: :class:`SpaceOutcome` per space and their tally, :class:`BackfillReport`.
"""

from invites.backfill.exceptions import BackfillConfigError, BackfillWorkerDied
from invites.backfill.job import MODE_BACKFILL, MODE_REPLACE_LEGACY
from invites.backfill.rate_limit import RateLimiter
from invites.backfill.report import BackfillReport, OutcomeStatus, PageRead, SpaceOutcome
from invites.backfill.run import backfill_missing_codes

__all__ = [
    "MODE_BACKFILL",
    "MODE_REPLACE_LEGACY",
    "BackfillConfigError",
    "BackfillReport",
    "BackfillWorkerDied",
    "OutcomeStatus",
    "PageRead",
    "RateLimiter",
    "SpaceOutcome",
    "backfill_missing_codes",
]
