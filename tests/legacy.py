"""Legacy-item writers for tests (re-exported from the development tooling that owns them)."""

from devtools.demo import put_legacy_mapping, put_legacy_membership, put_legacy_space

__all__ = ["put_legacy_mapping", "put_legacy_membership", "put_legacy_space"]
