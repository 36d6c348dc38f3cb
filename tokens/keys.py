"""The relay's cached auth entries of sk- keys, and dropping them once a write commits."""

from functools import partial

from django.core.cache import cache
from django.db import transaction

from core.cache import memo

from .models import Token


def token_cache_key(key_hash: str) -> str:
    return f"token:{key_hash}"


def _forget(keys: list[str]) -> None:
    cache.delete_many(keys)
    for key in keys:
        memo.forget(key)


def forget_cached_tokens(*key_hashes: str) -> None:
    """Drop the relay's cached auth entries for these keys once the write commits: in the
    shared cache, and in this process's memo (other processes drop theirs within
    `core.cache.memo`'s TTL). Dropping them before the commit would let a concurrent
    call re-cache the old row, still the visible one, for the whole token cache TTL."""
    keys = [token_cache_key(h) for h in key_hashes]
    if keys:
        transaction.on_commit(partial(_forget, keys))


def forget_user_tokens(user_id: int) -> None:
    """`forget_cached_tokens` for every key of a user: the relay caches the user's group,
    active flag and rate limit with each of them."""
    forget_cached_tokens(*Token.objects.filter(user_id=user_id).values_list("key_hash", flat=True))
