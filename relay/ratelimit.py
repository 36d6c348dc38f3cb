"""Optional requests-per-minute limits per token and per account (off unless an operator sets one).

Fixed one-minute windows counted with atomic increments in the shared cache, so the limit
holds exactly across every relay process and node. A request over a limit is refused
before any routing, with its own 429 (naming the limit) — never the saturation message,
and never a reason to try a fallback group. A refused request gives its increments back,
so refusals do not eat into the next allowed request's budget.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from core.cache import incr_with_ttl
from groups.saturation import counter_incr

from .errors import RelayError

WINDOW_S = 60
RATE_LIMITED_COUNT_KEY = "rl:refused"


def _window_key(scope: str, ident: int, window: int) -> str:
    return f"rl:{scope}:{ident}:{window}"


def _hit(key: str) -> int:
    return incr_with_ttl(key, 1, WINDOW_S * 2)


def rpm_check(*, token_id: int, token_rpm: int | None, user_id: int, user_rpm: int | None, now=None) -> None:
    """Count this request against the token's and the account's limits; RelayError if over one."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_S)
    limits = [
        ("token", token_id, token_rpm, "this API key"),
        ("user", user_id, user_rpm, "this account"),
    ]
    counted: list[str] = []
    for scope, ident, limit, label in limits:
        if not limit:
            continue
        key = _window_key(scope, ident, window)
        count = _hit(key)
        counted.append(key)
        if count > limit:
            for done in counted:
                cache.decr(done)
            counter_incr(RATE_LIMITED_COUNT_KEY)
            retry_after = max(int((window + 1) * WINDOW_S - now) + 1, 1)
            raise RelayError(
                "rate_limited",
                f"Rate limit reached: {label} allows {limit} requests per minute "
                f"(an operator setting on the {'key' if scope == 'token' else 'account'}). "
                f"Retry after {retry_after} s.",
                retry_after=retry_after,
            )


def rpm_check_token(token, *, now=None) -> None:
    """`rpm_check` for an authenticated `relay.auth.TokenInfo`; called on the event loop (a few
    cache round trips, like the token lookup) and free when neither limit is set."""
    if token.rpm_limit or token.user_rpm_limit:
        rpm_check(
            token_id=token.id,
            token_rpm=token.rpm_limit,
            user_id=token.user_id,
            user_rpm=token.user_rpm_limit,
            now=now,
        )
