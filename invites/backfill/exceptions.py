"""The backfill's own error."""


class BackfillConfigError(ValueError):
    """The arguments cannot describe a backfill (bad combination, bad checkpoint file)."""
