"""The one routing policy: which groups and models a caller may use, in what order, and why not.

Pure functions over `RoutingSnapshot` (no query, no cache): the relay plans calls with them
and every console page and API endpoint that answers "what can this token call" or "which
groups offer this model" asks them too, so both agree by construction. A refusal carries a
reason code (`Reason`) that the relay stores on the usage record and the "why did my call
fail" advice turns into text.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from core.pricing import fits_billing_mode

from .routing import ChannelInfo, ModelInfo, RoutingSnapshot, TokenGroupInfo

# Which channel kinds can serve an endpoint family.
CHANNEL_KINDS = {
    "chat": ("openai", "anthropic", "gemini"),
    "embeddings": ("openai",),
    "images": ("openai",),
    "videos": ("video",),
}
ALL_KINDS = tuple(sorted({k for kinds in CHANNEL_KINDS.values() for k in kinds}))


class Reason:
    """Why a call was refused or failed; stored on `UsageRecord.refusal_reason`."""

    NOT_OFFERED = "not_offered"  # no group of the token offers the model (404)
    UNKNOWN_MODEL = "unknown_model"  # no such model in the catalog (404)
    WRONG_ENDPOINT = "wrong_endpoint"  # e.g. a video model on the chat endpoint (400)
    ACCESS = "access"  # the user group may not use the token's groups that offer it (403)
    ALLOWLIST = "allowlist"  # the token's model allowlist excludes the model (403)
    TIER = "tier"  # the user group may not call the model's tier (403)
    BILLING_MODE = "billing_mode"  # the model has no price for the token's billing mode (403)
    NO_CHANNEL = "no_channel"  # every channel for the model is unhealthy (503)
    SATURATED = "saturated"  # every channel for the model is saturated (429)
    BALANCE = "balance"  # the wallet does not cover the hold (402)
    TOKEN_QUOTA = "token_quota"  # the token's quota does not cover the hold (402)


class CallerLike(Protocol):
    """The read-only shape the policy reads: a `Caller` or the relay's `TokenInfo`."""

    @property
    def user_group_id(self) -> int | None: ...
    @property
    def group_ids(self) -> tuple[int, ...]: ...
    @property
    def billing_mode(self) -> str: ...
    @property
    def model_allowlist(self) -> frozenset[str]: ...
    @property
    def user_id(self) -> int | None: ...


@dataclass(frozen=True)
class Caller:
    """What the policy needs to know about a token (the relay's `TokenInfo` has the same shape)."""

    user_group_id: int | None
    group_ids: tuple[int, ...]
    billing_mode: str
    model_allowlist: frozenset[str] = frozenset()
    user_id: int | None = None

    @classmethod
    def of_token(cls, token) -> Caller:
        """From a `tokens.Token` row (select group, then fallbacks in order)."""
        fallbacks = token.fallbacks.order_by("position").values_list("group_id", flat=True)
        return cls(
            user_group_id=token.user.user_group_id,
            group_ids=(token.select_group_id, *fallbacks),
            billing_mode=token.billing_mode,
            model_allowlist=frozenset(token.model_allowlist or ()),
            user_id=token.user_id,
        )


@dataclass(frozen=True)
class PlanStep:
    group: TokenGroupInfo
    multiplier: Decimal
    fallback: bool
    channels: tuple[ChannelInfo, ...]


@dataclass(frozen=True)
class Plan:
    model: ModelInfo
    steps: tuple[PlanStep, ...]

    @property
    def max_multiplier(self) -> Decimal:
        return max(step.multiplier for step in self.steps)


@dataclass(frozen=True)
class Refusal:
    """A call the policy refuses: the reason code and the facts a message needs."""

    reason: str
    model_name: str
    token_groups: tuple[str, ...] = ()
    offered_by: tuple[str, ...] = ()  # groups this user may use that offer the model
    model_kind: str = ""
    model_tier: str = ""
    allowed_tiers: tuple[str, ...] = ()
    billing_mode: str = ""


def may_use(
    snapshot: RoutingSnapshot,
    user_group_id: int | None,
    group: TokenGroupInfo,
    *,
    fallback: bool,
    user_id: int | None = None,
) -> bool:
    """May this user group (or this user, by a grant of their own) use the group as a select
    group (or, with fallback, as a fallback)?"""
    if not group.enabled:
        return False
    access = snapshot.access_for(user_group_id, group.id)
    if access is None:
        return snapshot.granted(user_id, group.id) and (fallback or not group.fallback_only)
    return fallback or not (group.fallback_only or access.fallback_only)


def serving_channels(group: TokenGroupInfo, model: str, family: str | None = None) -> tuple[ChannelInfo, ...]:
    """Enabled, not auto-disabled channels of the group for the model (of the family's kinds)."""
    kinds = CHANNEL_KINDS[family] if family else ALL_KINDS
    return tuple(c for c in group.channels_for(model) if c.kind in kinds)


def offers(
    group: TokenGroupInfo, model: str, family: str | None = None, api_format: str | None = None
) -> bool:
    return bool(serving_channels(group, model, family)) and (
        api_format is None or not group.api_formats or api_format in group.api_formats
    )


def group_models(snapshot: RoutingSnapshot, group_id: int) -> list[str]:
    """Names of the enabled catalog models a group offers through channels that can serve them."""
    group = snapshot.groups.get(group_id)
    if group is None:
        return []
    return sorted(name for name in group.channels if name in snapshot.models and offers(group, name))


def serving_groups(snapshot: RoutingSnapshot, model: str) -> list[TokenGroupInfo]:
    """Every enabled group that offers the model, whoever may use it (operator views)."""
    return sorted(
        (g for g in snapshot.groups.values() if g.enabled and offers(g, model)), key=lambda g: g.name.lower()
    )


def usable_groups(
    snapshot: RoutingSnapshot, user_group_id: int | None, *, fallback: bool, user_id: int | None = None
) -> list[TokenGroupInfo]:
    """Groups a user group (plus the user's own grants) may pick as select groups (or, with
    fallback, attach as fallbacks)."""
    return sorted(
        (
            g
            for g in snapshot.groups.values()
            if may_use(snapshot, user_group_id, g, fallback=fallback, user_id=user_id)
        ),
        key=lambda g: g.name.lower(),
    )


def groups_offering(
    snapshot: RoutingSnapshot,
    user_group_id: int | None,
    model: str,
    *,
    family: str | None = None,
    api_format: str | None = None,
    fallback: bool = True,
    user_id: int | None = None,
) -> list[TokenGroupInfo]:
    """Groups this user group (or user) may use (as select, or also as fallback) that offer the model."""
    return [
        g
        for g in usable_groups(snapshot, user_group_id, fallback=fallback, user_id=user_id)
        if offers(g, model, family, api_format)
    ]


def model_refusal(snapshot: RoutingSnapshot, caller: CallerLike, model: ModelInfo) -> str | None:
    """The caller-level reason the model is refused regardless of group, or None."""
    if caller.model_allowlist and model.name not in caller.model_allowlist:
        return Reason.ALLOWLIST
    if model.tier not in snapshot.user_group_tiers.get(caller.user_group_id, frozenset()):
        return Reason.TIER
    if not fits_billing_mode(model.price, caller.billing_mode):
        return Reason.BILLING_MODE
    return None


def _refusal(snapshot: RoutingSnapshot, caller: CallerLike, model_name: str, reason: str, family, api_format):
    model = snapshot.models.get(model_name)
    ug = caller.user_group_id
    uid = caller.user_id
    offering = groups_offering(snapshot, ug, model_name, family=family, api_format=api_format, user_id=uid)
    return Refusal(
        reason=reason,
        model_name=model_name,
        token_groups=tuple(snapshot.groups[g].name for g in caller.group_ids if g in snapshot.groups),
        offered_by=tuple(
            g.name + ("" if may_use(snapshot, ug, g, fallback=False, user_id=uid) else " (fallback only)")
            for g in offering
        ),
        model_kind=model.kind if model else "",
        model_tier=model.tier if model else "",
        allowed_tiers=tuple(sorted(snapshot.user_group_tiers.get(caller.user_group_id, frozenset()))),
        billing_mode=caller.billing_mode,
    )


def plan(
    snapshot: RoutingSnapshot,
    caller: CallerLike,
    model_name: str,
    *,
    family: str = "chat",
    api_format: str = "openai",
) -> Plan | Refusal:
    """The ordered groups that may serve this call, or why none may.

    Plan = the select group, then the fallback groups in order; a group is dropped when it
    offers the model through no channel of the right kind or not in the client's format, or
    when the user group may not use it in that position. Then the allowlist, tier and
    billing mode are checked once for the model."""
    model = snapshot.models.get(model_name)
    if model is None:
        return _refusal(snapshot, caller, model_name, Reason.UNKNOWN_MODEL, family, api_format)
    if (model.kind == "video") != (family == "videos"):
        return _refusal(snapshot, caller, model_name, Reason.WRONG_ENDPOINT, family, api_format)
    steps = []
    offered = False
    for position, gid in enumerate(caller.group_ids):
        group = snapshot.groups.get(gid)
        # A disabled group offers nothing: its callers hear where else the model is, not "access".
        if group is None or not group.enabled or not offers(group, model_name, family, api_format):
            continue
        offered = True
        fallback = position > 0
        if may_use(snapshot, caller.user_group_id, group, fallback=fallback, user_id=caller.user_id):
            steps.append(
                PlanStep(
                    group=group,
                    multiplier=snapshot.multiplier(group.id, caller.user_group_id),
                    fallback=fallback,
                    channels=serving_channels(group, model_name, family),
                )
            )
    if not offered:
        return _refusal(snapshot, caller, model_name, Reason.NOT_OFFERED, family, api_format)
    if not steps:
        return _refusal(snapshot, caller, model_name, Reason.ACCESS, family, api_format)
    reason = model_refusal(snapshot, caller, model)
    if reason is not None:
        return _refusal(snapshot, caller, model_name, reason, family, api_format)
    return Plan(model=model, steps=tuple(steps))


def callable_models(
    snapshot: RoutingSnapshot, caller: CallerLike, api_format: str | None = None
) -> list[tuple[str, str]]:
    """(model, first group) for every model the caller can call, in the order of its groups.

    Exactly the models `plan` would accept (for the model's own endpoint family)."""
    seen: dict[str, str] = {}
    for position, gid in enumerate(caller.group_ids):
        group = snapshot.groups.get(gid)
        if group is None or not may_use(
            snapshot, caller.user_group_id, group, fallback=position > 0, user_id=caller.user_id
        ):
            continue
        for name in sorted(group.channels):
            model = snapshot.models.get(name)
            if model is None or name in seen:
                continue
            family = "videos" if model.kind == "video" else ("images" if model.kind == "image" else "chat")
            if not offers(group, name, family, api_format):
                continue
            if model_refusal(snapshot, caller, model) is None:
                seen[name] = group.name
    return list(seen.items())
