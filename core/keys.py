"""Key generation and keyed hashing (sk- and mk- keys): the raw key is shown once, only its
HMAC is stored."""

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
