"""Upstream keys at rest: MultiFernet, newest key first, so keys can be rotated."""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _keys() -> list[str]:
    keys = list(settings.FERNET_KEYS)
    if not keys:
        digest = hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return keys


@cache
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in _keys()])


@cache
def _newest() -> Fernet:
    return Fernet(_keys()[0])


def encrypt_secret(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt_secret(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def rotate_secret(token: str) -> str:
    """Re-encrypt under the newest key."""
    return _fernet().rotate(token.encode()).decode()


def secret_is_current(token: str) -> bool:
    """Whether the newest key alone decrypts this ciphertext, i.e. rotating it changes nothing."""
    try:
        _newest().decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reset_cache() -> None:
    _fernet.cache_clear()
    _newest.cache_clear()
