from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Health probes, request ids, structured logs and metrics: what an operator needs."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations.metrics import install_dynamodb_hooks

        install_dynamodb_hooks()
