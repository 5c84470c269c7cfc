from django.apps import AppConfig


class SpacesConfig(AppConfig):
    name = "spaces"
    verbose_name = "Spaces"

    def ready(self) -> None:
        from spaces.dynamodb import current_binding

        current_binding()  # point the models at the settings' table; the connection comes on first use
