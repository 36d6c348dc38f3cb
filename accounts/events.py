"""Signals accounts sends to the layers above it, which it cannot call.

Sent by the account services, and by the groups services that move a user between user
groups: billing opens the wallet of a new user, tokens drop the relay's cached keys of a
user whose access changed.
"""

from django.dispatch import Signal

# Sent with `user` inside the transaction that created the user.
user_created = Signal()
# Sent with `user_id` after a write to what the relay caches with each key of the user:
# user group, active flag, rate limit.
user_access_changed = Signal()
