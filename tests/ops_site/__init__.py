"""A test-only site: the project plus views the operations tests need (throttled, slow, logging)."""
