"""Drop cached relay auth entries when their owner changes (user group, active flag, RPM limit).

Cache invalidation, not a business rule: tokens/signals.py covers the token itself; this covers
the account fields the relay also caches, so a recharge upgrade or a deactivation applies at once.
"""

from django.db.models.signals import post_save

from accounts.models import User
from tokens.keys import forget_cached_tokens
from tokens.models import Token


def _forget_users_tokens(sender, instance, **kwargs):
    hashes = Token.objects.filter(user_id=instance.pk).values_list("key_hash", flat=True)
    forget_cached_tokens(*hashes)


post_save.connect(_forget_users_tokens, sender=User, dispatch_uid="relay-user-tokens")
