"""Receivers billing needs from the layers below: a wallet for every new user, and a new
routing snapshot when an operator setting (the USD/CNY rate it carries) changes."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts.events import user_created
from groups.snapshot import bump_routing_version

from .models import Setting
from .services import wallet_get_or_create


@receiver(user_created, dispatch_uid="billing-open-wallet")
def _open_wallet(sender, user, **kwargs):
    wallet_get_or_create(user=user)


@receiver(post_save, sender=Setting, dispatch_uid="routing-save-Setting")
@receiver(post_delete, sender=Setting, dispatch_uid="routing-delete-Setting")
def _bump_routing(**kwargs):
    bump_routing_version()
