from django.apps import AppConfig


class GroupsConfig(AppConfig):
    name = "groups"
    verbose_name = "Groups, channels and models"

    def ready(self):
        from . import signals  # noqa: F401
