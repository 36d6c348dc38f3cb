"""Live saturation state shared by every relay process and the probe worker.

Kept in the Django cache (Redis in production, local memory in the embedded default):
- in-flight call counts per channel (atomic incr/decr),
- cool-downs after an upstream 429 (until a timestamp; Retry-After honoured, else growing),
- probe verdicts (healthy, saturated, failing, auth_error).

A channel is saturated while in-flight ≥ max concurrency, while cooling down, or while
its latest probe verdict says saturated. A channel held saturated only by the probe is
half-open: at most one real call per `HALF_OPEN_S` (across processes) may try it, and a
success puts it back in rotation at once, so customers are not refused longer than the
upstream was.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from core.cache import decr_floor, incr_with_ttl

INFLIGHT_TTL = 600  # a crashed process's in-flight counts expire instead of leaking forever
DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0
VERDICT_TTL = 3600
HALF_OPEN_S = 2  # one real call per channel per this many seconds tries a probe-held channel


class Verdict:
    HEALTHY = "healthy"
    SATURATED = "saturated"
    FAILING = "failing"
    AUTH_ERROR = "auth_error"

    ALL = (HEALTHY, SATURATED, FAILING, AUTH_ERROR)
    BLOCKING = (SATURATED, FAILING, AUTH_ERROR)


def _inflight_key(channel_id: int) -> str:
    return f"sat:inflight:{channel_id}"


def _cooldown_key(channel_id: int) -> str:
    return f"sat:cooldown:{channel_id}"


def _strikes_key(channel_id: int) -> str:
    return f"sat:strikes:{channel_id}"


def _verdict_key(channel_id: int) -> str:
    return f"sat:verdict:{channel_id}"


def _429_key(channel_id: int) -> str:
    return f"sat:count429:{channel_id}"


def _probe_count_key(channel_id: int, verdict: str) -> str:
    return f"sat:probes:{channel_id}:{verdict}"


def _probe_next_key(channel_id: int) -> str:
    return f"sat:probe_next:{channel_id}"


def _trial_key(channel_id: int) -> str:
    return f"sat:trial:{channel_id}"


def counter_incr(key: str) -> int:
    """A monotonic counter that lives as long as the cache (scraped by /metrics)."""
    return incr_with_ttl(key, 1, None)


def inflight_acquire(channel_id: int, max_concurrency: int) -> bool:
    """Count one more call in flight; refuse (and count nothing) when at capacity.

    One Redis round trip (and one more to give the slot back when refused)."""
    now = incr_with_ttl(_inflight_key(channel_id), 1, INFLIGHT_TTL)
    if max_concurrency and now > max_concurrency:
        inflight_release(channel_id)
        return False
    return True


def inflight_release(channel_id: int) -> None:
    decr_floor(_inflight_key(channel_id), INFLIGHT_TTL)


def inflight(channel_id: int) -> int:
    return max(int(cache.get(_inflight_key(channel_id)) or 0), 0)


def cooldown_start(channel_id: int, retry_after_s: float | None = None) -> float:
    """Cool a channel down after a 429: Retry-After if given, else a growing default."""
    if retry_after_s is None or retry_after_s <= 0:
        strikes = incr_with_ttl(_strikes_key(channel_id), 1, int(MAX_COOLDOWN_S) * 2)
        retry_after_s = min(DEFAULT_COOLDOWN_S * (2 ** (strikes - 1)), MAX_COOLDOWN_S)
    retry_after_s = min(float(retry_after_s), MAX_COOLDOWN_S)
    counter_incr(_429_key(channel_id))
    until = time.time() + retry_after_s
    cache.set(_cooldown_key(channel_id), until, int(retry_after_s) + 1)
    return retry_after_s


def cooldown_clear(channel_id: int) -> None:
    cache.delete_many([_cooldown_key(channel_id), _strikes_key(channel_id)])


def verdict_set(
    channel_id: int,
    verdict: str,
    *,
    retry_after_s: float | None = None,
    observed: str | None = None,
    latency_ms: int | None = None,
) -> None:
    """Publish the routing verdict; `observed`/`latency_ms` are the latest probe's own reading."""
    cache.set(
        _verdict_key(channel_id),
        {
            "verdict": verdict,
            "at": time.time(),
            "retry_after_s": retry_after_s,
            "observed": observed or verdict,
            "latency_ms": latency_ms,
        },
        VERDICT_TTL,
    )


def verdict_get(channel_id: int) -> dict | None:
    return cache.get(_verdict_key(channel_id))


def verdict_clear_auth_error(channel_id: int) -> None:
    """An operator re-enabled the channel: forget an auth_error verdict (others stand)."""
    verdict = verdict_get(channel_id)
    if verdict and verdict.get("verdict") == Verdict.AUTH_ERROR:
        cache.delete(_verdict_key(channel_id))


def channel_states(channel_ids: list[int]) -> dict[int, dict]:
    """In-flight, cool-down and verdict for many channels in one cache round trip."""
    keys = {}
    for cid in channel_ids:
        keys[_inflight_key(cid)] = (cid, "inflight")
        keys[_cooldown_key(cid)] = (cid, "cooldown_until")
        keys[_verdict_key(cid)] = (cid, "verdict")
        keys[_trial_key(cid)] = (cid, "trial_at")
    values = cache.get_many(list(keys))
    out = {
        cid: {"inflight": 0, "cooldown_until": None, "verdict": None, "trial_at": None} for cid in channel_ids
    }
    for key, value in values.items():
        cid, field = keys[key]
        out[cid][field] = value
    return out


def is_saturated(state: dict, max_concurrency: int, now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if max_concurrency and int(state.get("inflight") or 0) >= max_concurrency:
        return True
    if state.get("cooldown_until") and float(state["cooldown_until"]) > now:
        return True
    verdict = state.get("verdict")
    return bool(verdict and verdict.get("verdict") == Verdict.SATURATED)


def held_by_probe(state: dict, max_concurrency: int, now: float | None = None) -> bool:
    """Saturated only because the probe says so: no cool-down, a free slot. Half-open."""
    now = time.time() if now is None else now
    verdict = state.get("verdict")
    if not (verdict and verdict.get("verdict") == Verdict.SATURATED):
        return False
    if max_concurrency and int(state.get("inflight") or 0) >= max_concurrency:
        return False
    return not (state.get("cooldown_until") and float(state["cooldown_until"]) > now)


def half_open_wait(state: dict, now: float | None = None) -> float:
    """Seconds until a held channel's next real-call trial may start (0: now)."""
    now = time.time() if now is None else now
    trial_at = state.get("trial_at")
    return max(float(trial_at) + HALF_OPEN_S - now, 0.0) if trial_at else 0.0


def half_open_claim(channel_id: int, now: float | None = None) -> bool:
    """Take the one trial a held channel allows per HALF_OPEN_S; atomic across processes."""
    now = time.time() if now is None else now
    return bool(cache.add(_trial_key(channel_id), now, HALF_OPEN_S))


def half_open_succeeded(channel_id: int) -> None:
    """A real call got through a held channel: the upstream recovered, route to it again."""
    verdict = verdict_get(channel_id)
    if verdict and verdict.get("verdict") == Verdict.SATURATED:
        verdict_set(channel_id, Verdict.HEALTHY, observed="real_call")
    cooldown_clear(channel_id)


def upstream_429_counted(channel_id: int) -> None:
    """Count an upstream 429 that started no cool-down (cooldown_start counts its own)."""
    counter_incr(_429_key(channel_id))


def probe_counted(channel_id: int, verdict: str) -> None:
    counter_incr(_probe_count_key(channel_id, verdict))


def probe_next_set(channel_id: int, at: float) -> None:
    cache.set(_probe_next_key(channel_id), at, VERDICT_TTL)


def probe_next_many(channel_ids: list[int]) -> dict[int, float]:
    """When each channel's next probe is due (absent = due now)."""
    values = cache.get_many([_probe_next_key(cid) for cid in channel_ids])
    return {cid: float(values[_probe_next_key(cid)]) for cid in channel_ids if _probe_next_key(cid) in values}


def metrics_snapshot(channel_ids: list[int]) -> dict[int, dict]:
    """Everything /metrics exports per channel, read from the shared cache in one round trip."""
    states = channel_states(channel_ids)
    keys = {}
    for cid in channel_ids:
        keys[_429_key(cid)] = (cid, "upstream_429")
        for verdict in Verdict.ALL:
            keys[_probe_count_key(cid, verdict)] = (cid, verdict)
    values = cache.get_many(list(keys))
    for cid in channel_ids:
        states[cid]["upstream_429"] = 0
        states[cid]["probes"] = dict.fromkeys(Verdict.ALL, 0)
    for key, value in values.items():
        cid, field = keys[key]
        if field == "upstream_429":
            states[cid]["upstream_429"] = int(value)
        else:
            states[cid]["probes"][field] = int(value)
    return states


def channel_state(channel, state: dict, now: float | None = None) -> dict:
    """The one reading of a channel's live state that every console page and the API show.

    `status` is "off" (disabled by hand or automatically), "saturated" (full, cooling down or
    the probe says so), else the probe verdict ("healthy", "unknown", ...).
    """
    now = time.time() if now is None else now
    verdict = (state.get("verdict") or {}).get("verdict")
    cooldown = state.get("cooldown_until")
    saturated = is_saturated(state, channel.max_concurrency, now)
    if not channel.is_active:
        status = "off"
    elif saturated:
        status = Verdict.SATURATED
    else:
        status = verdict or "unknown"
    return {
        "status": str(status),
        "verdict": verdict,
        "saturated": saturated,
        "inflight": max(int(state.get("inflight") or 0), 0),
        "cooldown_remaining_s": round(max(float(cooldown) - now, 0.0), 3) if cooldown else 0.0,
    }
