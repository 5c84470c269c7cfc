"""The backfill's own errors."""


class BackfillConfigError(ValueError):
    """The arguments cannot describe a backfill (bad combination, bad checkpoint file, another run's shape)."""


class BackfillWorkerDied(RuntimeError):
    """A worker process of ``--processes`` ended without reporting (killed, out of memory, a crash)."""
