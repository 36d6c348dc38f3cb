"""The versioned in-memory routing snapshot every relay request reads.

Groups, channels, models, prices, group access and the USD/CNY rate are loaded once
per process and rebuilt only when `groups.snapshot.routing_version()` changes (any
save bumps it) or the snapshot is older than MAX_AGE_S (a safety net for a bump that
raced a commit). A warm request therefore reads routing config with one cache get
and no database query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeGuard

from django.core.exceptions import ImproperlyConfigured

from accounts.models import User
from core.db import db_async
from core.pricing import ModelPrice

from .models import Channel, ChannelModel, GroupAccess, Model, TokenGroup, UserGroup
from .snapshot import routing_version

MAX_AGE_S = 60.0


@dataclass(frozen=True)
class ModelInfo:
    id: int
    name: str
    kind: str
    tier: str
    price: ModelPrice
    max_output_tokens: int


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    name: str
    kind: str
    base_url: str
    api_key: str
    priority: int
    weight: int
    max_concurrency: int
    upstream_names: dict[str, str] = field(default_factory=dict)
    allow_private_network: bool = False

    def upstream_model(self, model: str) -> str:
        return self.upstream_names.get(model) or model


@dataclass(frozen=True)
class TokenGroupInfo:
    id: int
    name: str
    multiplier: Decimal
    api_formats: tuple[str, ...]
    fallback_only: bool
    enabled: bool
    channels: dict[str, tuple[ChannelInfo, ...]] = field(default_factory=dict)

    def channels_for(self, model: str) -> tuple[ChannelInfo, ...]:
        return self.channels.get(model, ())


@dataclass(frozen=True)
class AccessInfo:
    fallback_only: bool
    multiplier_override: Decimal | None


@dataclass(frozen=True)
class RoutingSnapshot:
    version: str
    built_at: float
    models: dict[str, ModelInfo]
    groups: dict[int, TokenGroupInfo]
    user_group_tiers: dict[int | None, frozenset[str]]  # None (no user group) is never a key
    access: dict[tuple[int, int], AccessInfo]
    usd_cny_rate: Decimal
    user_grants: dict[int, frozenset[int]] = field(default_factory=dict)  # user id → granted group ids

    def granted(self, user_id: int | None, group_id: int) -> bool:
        """Has an operator granted this group to this user alone?"""
        return user_id is not None and group_id in self.user_grants.get(user_id, frozenset())

    def access_for(self, user_group_id: int | None, group_id: int) -> AccessInfo | None:
        if user_group_id is None:
            return None
        return self.access.get((user_group_id, group_id))

    def multiplier(self, group_id: int, user_group_id: int | None) -> Decimal:
        """`groups.selectors.effective_multiplier`, answered from memory."""
        access = self.access_for(user_group_id, group_id)
        if access is not None and access.multiplier_override is not None:
            return access.multiplier_override
        return self.groups[group_id].multiplier


# The USD/CNY rate is one of billing's operator settings, a layer above groups: billing hands
# over its reader once the app registry is ready (billing/apps.py).
_usd_cny_rate: Callable[[], Decimal] | None = None


def read_usd_cny_rate_with(reader: Callable[[], Decimal]) -> None:
    """Where the snapshot reads the USD/CNY rate from."""
    global _usd_cny_rate
    _usd_cny_rate = reader


def build_snapshot(version: str) -> RoutingSnapshot:
    """Load the whole routing configuration in a handful of queries."""
    if _usd_cny_rate is None:
        raise ImproperlyConfigured("No USD/CNY rate reader: is the billing app installed?")
    models = {
        m.name: ModelInfo(m.pk, m.name, m.kind, m.tier, ModelPrice.of(m), m.max_output_tokens)
        for m in Model.objects.filter(enabled=True)
    }
    channels = {c.pk: c for c in Channel.objects.filter(enabled=True, auto_disabled=False)}
    served: dict[int, dict[str, str]] = {}
    for cm in ChannelModel.objects.filter(channel_id__in=channels, model__enabled=True).values(
        "channel_id", "model__name", "upstream_name"
    ):
        served.setdefault(cm["channel_id"], {})[cm["model__name"]] = cm["upstream_name"]
    infos = {
        c.pk: ChannelInfo(
            id=c.pk,
            name=c.name,
            kind=c.kind,
            base_url=c.base_url.rstrip("/"),
            api_key=c.api_key,
            priority=c.priority,
            weight=c.weight,
            max_concurrency=c.max_concurrency,
            upstream_names={k: v for k, v in served.get(c.pk, {}).items() if v},
            allow_private_network=c.allow_private_network,
        )
        for c in channels.values()
    }
    group_channels: dict[int, dict[str, list[ChannelInfo]]] = {}
    for link in Channel.token_groups.through.objects.filter(channel_id__in=channels).values(
        "channel_id", "tokengroup_id"
    ):
        per_model = group_channels.setdefault(link["tokengroup_id"], {})
        for model_name in served.get(link["channel_id"], {}):
            per_model.setdefault(model_name, []).append(infos[link["channel_id"]])
    groups = {
        g.pk: TokenGroupInfo(
            id=g.pk,
            name=g.name,
            multiplier=g.multiplier,
            api_formats=tuple(g.api_formats or ()),
            fallback_only=g.fallback_only,
            enabled=g.enabled,
            channels={
                name: tuple(sorted(chs, key=lambda c: (-c.priority, c.name)))
                for name, chs in group_channels.get(g.pk, {}).items()
            },
        )
        for g in TokenGroup.objects.all()
    }
    return RoutingSnapshot(
        version=version,
        built_at=time.monotonic(),
        models=models,
        groups=groups,
        user_group_tiers={ug.pk: frozenset(ug.model_tiers or ()) for ug in UserGroup.objects.all()},
        access={
            (a.user_group_id, a.token_group_id): AccessInfo(a.fallback_only, a.multiplier_override)
            for a in GroupAccess.objects.all()
        },
        usd_cny_rate=_usd_cny_rate(),
        user_grants=_user_grants(
            User.extra_token_groups.through.objects.values_list("user_id", "tokengroup_id")
        ),
    )


def _user_grants(rows) -> dict[int, frozenset[int]]:
    grants: dict[int, set[int]] = {}
    for user_id, group_id in rows:
        grants.setdefault(user_id, set()).add(group_id)
    return {user_id: frozenset(ids) for user_id, ids in grants.items()}


_lock = threading.Lock()
_current: RoutingSnapshot | None = None


def _fresh(snapshot: RoutingSnapshot | None, version: str) -> TypeGuard[RoutingSnapshot]:
    return (
        snapshot is not None
        and snapshot.version == version
        and time.monotonic() - snapshot.built_at < MAX_AGE_S
    )


def get_snapshot() -> RoutingSnapshot:
    """The current snapshot, rebuilt first if the shared version moved on."""
    global _current
    version = routing_version()
    snapshot = _current
    if _fresh(snapshot, version):
        return snapshot
    with _lock:
        if not _fresh(_current, version):
            _current = build_snapshot(version)
        return _current


async def aget_snapshot() -> RoutingSnapshot:
    """Async form: no thread hop at all when the snapshot is warm."""
    snapshot = _current
    if _fresh(snapshot, routing_version()):
        return snapshot
    return await db_async(get_snapshot)()
