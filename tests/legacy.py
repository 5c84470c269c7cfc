"""Legacy-item writers for tests (re-exported from the demo module that owns them)."""

from spaces.demo import put_legacy_mapping, put_legacy_membership, put_legacy_space

__all__ = ["put_legacy_mapping", "put_legacy_membership", "put_legacy_space"]
