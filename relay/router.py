"""Order the channels of one group for one call.

Highest priority first, weighted random within a priority, skipping channels that are
saturated (in-flight at max concurrency, cooling down after a 429, probe says saturated)
or that the probe found failing. Live state comes from `groups.saturation` in one cache
round trip per group.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from itertools import groupby

from groups.routing import ChannelInfo
from groups.saturation import Verdict, channel_states, is_saturated


@dataclass(frozen=True)
class Candidates:
    ready: list[ChannelInfo]
    saturated: list[ChannelInfo]
    unhealthy: list[ChannelInfo]
    retry_after_s: float


def weighted_order(channels: list[ChannelInfo], rng: random.Random) -> list[ChannelInfo]:
    """Weighted shuffle without replacement (Efraimidis–Spirakis keys)."""
    return sorted(channels, key=lambda c: -(rng.random() ** (1.0 / max(c.weight, 1))))


def order_channels(
    channels: tuple[ChannelInfo, ...], *, rng: random.Random | None = None, now: float | None = None
) -> Candidates:
    rng = rng or random
    now = time.time() if now is None else now
    states = channel_states([c.id for c in channels])
    ready, saturated, unhealthy = [], [], []
    retry_after = None
    for channel in channels:
        state = states[channel.id]
        verdict = (state.get("verdict") or {}).get("verdict")
        if verdict in (Verdict.FAILING, Verdict.AUTH_ERROR):
            unhealthy.append(channel)
        elif is_saturated(state, channel.max_concurrency, now):
            saturated.append(channel)
            wait = _wait_s(state, now)
            retry_after = wait if retry_after is None else min(retry_after, wait)
        else:
            ready.append(channel)
    ordered = []
    by_priority = sorted(ready, key=lambda c: -c.priority)
    for _, tier in groupby(by_priority, key=lambda c: c.priority):
        ordered.extend(weighted_order(list(tier), rng))
    return Candidates(ordered, saturated, unhealthy, retry_after or 1.0)


def _wait_s(state: dict, now: float) -> float:
    until = state.get("cooldown_until")
    if until and float(until) > now:
        return float(until) - now
    verdict = state.get("verdict") or {}
    if verdict.get("retry_after_s"):
        return float(verdict["retry_after_s"])
    return 1.0
