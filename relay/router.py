"""Order the channels of one group for one call.

Highest priority first, weighted random within a priority, skipping channels that are
saturated (in-flight at max concurrency, cooling down after a 429) or that the probe found
failing. Channels the probe alone holds saturated are `held`: the caller may try one when
it wins the channel's half-open trial. Live state comes from `groups.saturation` in one
cache round trip per group.

`retry_after_s` is the honest earliest time a retry can succeed: the end of a cool-down,
or the next half-open trial of a held channel — never a guess shorter than that.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from itertools import groupby
from typing import Protocol

from groups.routing import ChannelInfo
from groups.saturation import Verdict, channel_states, half_open_wait, held_by_probe, is_saturated


@dataclass(frozen=True)
class Candidates:
    ready: list[ChannelInfo]
    saturated: list[ChannelInfo]
    unhealthy: list[ChannelInfo]
    retry_after_s: float
    held: list[ChannelInfo] = field(default_factory=list)
    held_wait_s: dict[int, float] = field(default_factory=dict)


class Draws(Protocol):
    """A source of uniform draws in [0, 1): the `random` module or a seeded `random.Random`."""

    def random(self) -> float: ...


def weighted_order(channels: list[ChannelInfo], rng: Draws) -> list[ChannelInfo]:
    """Weighted shuffle without replacement (Efraimidis–Spirakis keys)."""
    return sorted(channels, key=lambda c: -(rng.random() ** (1.0 / max(c.weight, 1))))


def order_channels(
    channels: tuple[ChannelInfo, ...], *, rng: random.Random | None = None, now: float | None = None
) -> Candidates:
    draws: Draws = rng or random
    now = time.time() if now is None else now
    states = channel_states([c.id for c in channels])
    ready, saturated, unhealthy, held = [], [], [], []
    held_wait = {}
    retry_after = None
    for channel in channels:
        state = states[channel.id]
        verdict = (state.get("verdict") or {}).get("verdict")
        if verdict in (Verdict.FAILING, Verdict.AUTH_ERROR):
            unhealthy.append(channel)
        elif held_by_probe(state, channel.max_concurrency, now):
            held.append(channel)
            held_wait[channel.id] = half_open_wait(state, now)
        elif is_saturated(state, channel.max_concurrency, now):
            saturated.append(channel)
            wait = _wait_s(state, now)
            retry_after = wait if retry_after is None else min(retry_after, wait)
        else:
            ready.append(channel)
    ordered = []
    by_priority = sorted(ready, key=lambda c: -c.priority)
    for _, tier in groupby(by_priority, key=lambda c: c.priority):
        ordered.extend(weighted_order(list(tier), draws))
    held.sort(key=lambda c: -c.priority)
    return Candidates(ordered, saturated, unhealthy, retry_after or 1.0, held, held_wait)


def _wait_s(state: dict, now: float) -> float:
    """A cool-down ends at a known time; a full channel frees a slot when any call ends."""
    until = state.get("cooldown_until")
    if until and float(until) > now:
        return float(until) - now
    return 1.0
