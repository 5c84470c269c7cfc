from django.apps import AppConfig


class SpacesConfig(AppConfig):
    name = "spaces"
    verbose_name = "Spaces"

    def ready(self) -> None:
        from spaces.dynamodb import bind_table

        bind_table()
