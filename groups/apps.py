from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Groups, channels and models"

    def ready(self):
        # Imported here, not at the top: the receivers load models, which needs the app registry ready.
        from . import signals  # noqa: F401
