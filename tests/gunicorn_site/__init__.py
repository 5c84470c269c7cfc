"""A test-only site for tests that run a real gunicorn: the project plus a throttled probe view."""
