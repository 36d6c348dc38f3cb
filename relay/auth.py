"""Key authentication for the relay: cached lookup by HMAC hash, then cheap checks in memory.

The cache entry (`tokens.keys.token_cache_key`) is dropped once the write commits by the
services that change a token, its fallbacks or its user (user group, active flag, rate
limit); the TTL bounds staleness of anything else. Unknown keys are cached too, so a flood of bad keys does
not reach the database. Each process also keeps what it read for a second
(`core.cache.memo`), so a warm call asks Redis nothing about its key: a key
disabled elsewhere stops working here within that second, at once in the process
that disabled it.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from django.core.cache import cache

from core.cache import LocalMemo, memo
from core.db import db_async
from core.http import client_ip
from core.keys import KEY_PREFIX, hash_key
from tokens.keys import token_cache_key
from tokens.models import Token

from .errors import RelayError

TOKEN_CACHE_TTL = 60
UNKNOWN_KEY_TTL = 30
LAST_USED_EVERY_S = 60
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    user_id: int
    user_active: bool
    user_group_id: int | None
    enabled: bool
    expires_at: float | None
    select_group_id: int
    fallback_group_ids: tuple[int, ...]
    billing_mode: str
    model_allowlist: frozenset[str]
    ip_allowlist: tuple[str, ...]
    rpm_limit: int | None
    user_rpm_limit: int | None

    @property
    def group_ids(self) -> tuple[int, ...]:
        return (self.select_group_id, *self.fallback_group_ids)


def extract_key(request) -> str | None:
    """The key from `Authorization: Bearer sk-…`, a bare `Authorization: sk-…` (apiyi's own
    Sora/Veo samples send it so) or `x-api-key`."""
    header = request.headers.get("Authorization", "").strip()
    if header[:7].lower() == "bearer ":
        key = header[7:].strip()
        if key:
            return key
    elif header.startswith("sk-") and " " not in header:
        return header  # apiyi's own Sora/Veo samples send the bare key
    key = request.headers.get("x-api-key", "").strip() or request.headers.get("x-goog-api-key", "").strip()
    if not key and request.path.startswith("/v1beta/"):
        key = request.GET.get("key", "").strip()  # Gemini clients may send the key in the URL
    return key or None


def load_token(key_hash: str) -> TokenInfo | None:
    token = Token.objects.select_related("user").filter(key_hash=key_hash).first()
    if token is None:
        return None
    return TokenInfo(
        id=token.pk,
        name=token.name,
        user_id=token.user_id,
        user_active=token.user.is_active,
        user_group_id=token.user.user_group_id,
        enabled=token.enabled,
        expires_at=token.expires_at.timestamp() if token.expires_at else None,
        select_group_id=token.select_group_id,
        fallback_group_ids=tuple(token.fallbacks.order_by("position").values_list("group_id", flat=True)),
        billing_mode=token.billing_mode,
        model_allowlist=frozenset(token.model_allowlist or ()),
        ip_allowlist=tuple(token.ip_allowlist or ()),
        rpm_limit=token.rpm_limit,
        user_rpm_limit=token.user.rpm_limit,
    )


def _cached_token(key_hash: str) -> TokenInfo | None | str:
    return cache.get(token_cache_key(key_hash))


def _load_and_cache(key_hash: str) -> TokenInfo | None:
    info = load_token(key_hash)
    if info is None:
        cache.set(token_cache_key(key_hash), _UNKNOWN, UNKNOWN_KEY_TTL)
    else:
        cache.set(token_cache_key(key_hash), info, TOKEN_CACHE_TTL)
    return info


def ip_allowed(ip: str, allowlist: tuple[str, ...]) -> bool:
    if not allowlist:
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in allowlist:
        try:
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_token(info: TokenInfo | None, *, ip: str, now: float | None = None) -> TokenInfo:
    """Refuse a missing, disabled or expired key (401) or a caller outside its IP list (403)."""
    if info is None:
        raise RelayError("invalid_api_key", "Invalid API key. Check the sk- key on your token page.")
    if not info.enabled or not info.user_active:
        raise RelayError("invalid_api_key", "This API key is disabled.")
    now = time.time() if now is None else now
    if info.expires_at is not None and info.expires_at <= now:
        raise RelayError("invalid_api_key", "This API key has expired.")
    if not ip_allowed(ip, info.ip_allowlist):
        raise RelayError("permission", f"Calls from {ip or 'this address'} are not allowed for this key.")
    return info


async def authenticate(request) -> TokenInfo:
    """The token behind the request's key; a database query only on a cache miss."""
    raw = extract_key(request)
    if not raw:
        where = (
            "'x-goog-api-key: sk-…', '?key=sk-…' or 'Authorization: Bearer sk-…'"
            if request.path.startswith("/v1beta")
            else "'Authorization: Bearer sk-…' or 'x-api-key: sk-…'"
        )
        raise RelayError("invalid_api_key", f"Missing API key. Send it as {where}.")
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        raise RelayError("invalid_api_key", "Invalid API key. Check the sk- key on your token page.")
    key_hash = hash_key(raw)
    memo_key = token_cache_key(key_hash)
    info = memo.get(memo_key)
    if info is memo.MISSING:
        info = _cached_token(key_hash)
        if info is None:
            info = await db_async(_load_and_cache)(key_hash)
        memo.put(memo_key, info)
    if info == _UNKNOWN:
        info = None
    return check_token(info, ip=client_ip(request) or "")


_asked_recently = LocalMemo(ttl=LAST_USED_EVERY_S, max_entries=100_000)


def should_touch_last_used(token_id: int) -> bool:
    """True at most once a minute per token, across every relay process; a process asks the
    shared cache only once a minute per token."""
    if _asked_recently.get(token_id) is not LocalMemo.MISSING:
        return False
    _asked_recently.put(token_id, True)
    return cache.add(f"token:last_used:{token_id}", 1, LAST_USED_EVERY_S)
