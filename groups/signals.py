"""Any change to routing configuration bumps the shared snapshot version.

Cache invalidation, not a business rule: every relay process rebuilds its in-memory
routing snapshot when it sees a new version.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts.models import User

from .models import Channel, ChannelModel, GroupAccess, Model, TokenGroup, UserGroup
from .snapshot import bump_routing_version


def _bump(**kwargs):
    bump_routing_version()


for _model in (UserGroup, TokenGroup, GroupAccess, Model, Channel, ChannelModel):
    post_save.connect(_bump, sender=_model, dispatch_uid=f"routing-save-{_model.__name__}")
    post_delete.connect(_bump, sender=_model, dispatch_uid=f"routing-delete-{_model.__name__}")
m2m_changed.connect(_bump, sender=Channel.token_groups.through, dispatch_uid="routing-m2m")
m2m_changed.connect(_bump, sender=User.extra_token_groups.through, dispatch_uid="routing-user-grants")
