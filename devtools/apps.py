from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development tooling: the embedded DynamoDB and its command. Never installed in production."""

    name = "devtools"
    verbose_name = "Development tools"
