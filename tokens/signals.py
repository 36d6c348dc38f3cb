"""Receivers for what accounts announces about a user: the relay caches the user's group,
active flag and rate limit with each of their keys, so those entries go once the write commits."""

from django.dispatch import receiver

from accounts.events import user_access_changed

from .keys import forget_user_tokens


@receiver(user_access_changed, dispatch_uid="tokens-forget-user-keys")
def _forget_user_keys(sender, user_id: int, **kwargs):
    forget_user_tokens(user_id)
