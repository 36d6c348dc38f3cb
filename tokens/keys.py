"""sk- key generation and keyed hashing: the raw key is shown once, only its HMAC is stored."""

import hashlib
import hmac
import secrets

from django.conf import settings

KEY_PREFIX = "sk-"
DISPLAY_PREFIX_LEN = 10


def generate_key(prefix: str = KEY_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(36)


def hash_key(raw_key: str) -> str:
    return hmac.new(settings.KEY_HASH_SECRET.encode(), raw_key.encode(), hashlib.sha256).hexdigest()


def display_prefix(raw_key: str) -> str:
    return raw_key[:DISPLAY_PREFIX_LEN]


def token_cache_key(key_hash: str) -> str:
    return f"token:{key_hash}"


def forget_cached_tokens(*key_hashes: str) -> None:
    """Drop the relay's cached auth entries for these keys: in the shared cache, and in this
    process's memo at once (other processes drop theirs within `apiyi_admin.cache.memo`'s TTL)."""
    from django.core.cache import cache

    from apiyi_admin.cache import memo

    keys = [token_cache_key(h) for h in key_hashes]
    cache.delete_many(keys)
    for key in keys:
        memo.forget(key)
