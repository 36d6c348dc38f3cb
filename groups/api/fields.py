"""Serializer fields naming groups' objects, shared by the API packages above groups."""

from core.api import NameField
from groups.models import TokenGroup


class GroupNameField(NameField):
    """A token group given and shown by its name."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", TokenGroup.objects.all())
        super().__init__(**kwargs)
