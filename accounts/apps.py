from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        # Counts failed sign-ins from every front door (user_login_failed).
        from accounts import login_guard  # noqa: F401
        from accounts.models import User
        from accounts.revocation import revoke_tokens_of_deleted_user

        post_delete.connect(revoke_tokens_of_deleted_user, sender=User, dispatch_uid="accounts-revoke-deleted")
