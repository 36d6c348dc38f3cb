from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # Imported here, not at the top: the receivers load models, which needs the app registry ready.
        from . import signals  # noqa: F401
