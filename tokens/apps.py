from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tokens"

    def ready(self):
        # Imported here, not at the top: the receivers load models, which needs the app registry ready.
        from . import checks, signals  # noqa: F401
