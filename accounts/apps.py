from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self) -> None:
        from accounts import login_guard, revocation  # noqa: F401  (their signal receivers)
