from django.apps import AppConfig


class SpacesConfig(AppConfig):
    name = "spaces"
    verbose_name = "Spaces"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from spaces.signals import remove_memberships_of_deleted_user

        pre_delete.connect(remove_memberships_of_deleted_user, sender=get_user_model(), dispatch_uid="spaces-user")
