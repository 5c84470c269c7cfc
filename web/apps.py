from django.apps import AppConfig


class WebConfig(AppConfig):
    """The server-rendered pages people use (not the admin): the join page and its sign-in."""

    name = "web"
    verbose_name = "Web pages"

    def ready(self) -> None:
        from web import checks  # noqa: F401  (registers the system check)
