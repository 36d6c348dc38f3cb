"""Plan a call: which token groups may serve it, in order, at which multiplier.

Plan = the token's select group, then its fallback groups in order; a group is dropped
when the user's user group may not use it (in that position), when it offers the model
through no enabled channel of the right kind, or when the client's format is not one of
its formats. The model tier (user group) and the billing mode (token) are checked once
for the model. Everything is answered from the routing snapshot: no query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.pricing import fits_billing_mode
from groups.routing import ChannelInfo, ModelInfo, RoutingSnapshot, TokenGroupInfo

from .auth import TokenInfo
from .errors import RelayError

# Which channel kinds can serve an endpoint family.
CHANNEL_KINDS = {
    "chat": ("openai", "anthropic"),
    "embeddings": ("openai",),
    "images": ("openai",),
    "videos": ("video",),
}


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


def _may_use(snapshot: RoutingSnapshot, token: TokenInfo, group: TokenGroupInfo, *, fallback: bool) -> bool:
    if not group.enabled:
        return False
    access = snapshot.access_for(token.user_group_id, group.id)
    if access is None:
        return False
    return fallback or not (group.fallback_only or access.fallback_only)


def _serving_channels(group: TokenGroupInfo, model: str, family: str) -> tuple[ChannelInfo, ...]:
    kinds = CHANNEL_KINDS[family]
    return tuple(c for c in group.channels_for(model) if c.kind in kinds)


def _offers(group: TokenGroupInfo, model: str, family: str, api_format: str) -> bool:
    return bool(_serving_channels(group, model, family)) and (
        not group.api_formats or api_format in group.api_formats
    )


def groups_offering(
    snapshot: RoutingSnapshot, token: TokenInfo, model: str, family: str, api_format: str
) -> list[str]:
    """Groups this user may use (select or fallback) that do offer the model."""
    names = []
    for group in sorted(snapshot.groups.values(), key=lambda g: g.name.lower()):
        if _may_use(snapshot, token, group, fallback=True) and _offers(group, model, family, api_format):
            names.append(
                group.name
                + (" (fallback only)" if not _may_use(snapshot, token, group, fallback=False) else "")
            )
    return names


def token_group_names(snapshot: RoutingSnapshot, token: TokenInfo) -> list[str]:
    return [snapshot.groups[gid].name for gid in token.group_ids if gid in snapshot.groups]


def not_found(snapshot, token, model_name, family, api_format) -> RelayError:
    mine = ", ".join(token_group_names(snapshot, token)) or "none"
    elsewhere = groups_offering(snapshot, token, model_name, family, api_format)
    if elsewhere:
        hint = (
            f" It is offered by: {', '.join(elsewhere)}. Set one of these as the token's "
            "select group or add it as a fallback group."
        )
    else:
        hint = " No group available to your account offers it."
    return RelayError(
        "model_not_found",
        f"The model '{model_name}' is not available in this token's groups ({mine}).{hint}",
        param="model",
    )


def plan_route(
    *, snapshot: RoutingSnapshot, token: TokenInfo, model_name: str, family: str, api_format: str
) -> Plan:
    """The ordered groups that may serve this call, or the refusal the client should see."""
    model = snapshot.models.get(model_name)
    if model is None:
        raise not_found(snapshot, token, model_name, family, api_format)
    if (model.kind == "video") != (family == "videos"):
        where = "POST /v1/videos" if model.kind == "video" else "the chat or messages endpoints"
        raise RelayError(
            "invalid_request",
            f"'{model_name}' is a {model.kind} model; call it through {where}.",
            param="model",
        )
    steps = []
    offered_somewhere = False
    for position, gid in enumerate(token.group_ids):
        group = snapshot.groups.get(gid)
        if group is None or not _offers(group, model_name, family, api_format):
            continue
        offered_somewhere = True
        fallback = position > 0
        if not _may_use(snapshot, token, group, fallback=fallback):
            continue
        steps.append(
            PlanStep(
                group=group,
                multiplier=snapshot.multiplier(group.id, token.user_group_id),
                fallback=fallback,
                channels=_serving_channels(group, model_name, family),
            )
        )
    if not offered_somewhere:
        raise not_found(snapshot, token, model_name, family, api_format)
    if not steps:
        raise RelayError(
            "permission",
            f"Your account may not use the groups of this token that offer '{model_name}' "
            f"({', '.join(token_group_names(snapshot, token))}).",
            param="model",
        )
    if token.model_allowlist and model_name not in token.model_allowlist:
        raise RelayError(
            "permission", f"This key may not call '{model_name}' (model allowlist).", param="model"
        )
    tiers = snapshot.user_group_tiers.get(token.user_group_id, frozenset())
    if model.tier not in tiers:
        raise RelayError(
            "permission",
            f"'{model_name}' is a {model.tier} model; your user group may call: "
            f"{', '.join(sorted(tiers)) or 'none'}.",
            param="model",
        )
    if not fits_billing_mode(model.price, token.billing_mode):
        raise RelayError(
            "permission",
            f"'{model_name}' has no price for this key's billing mode ({token.billing_mode}).",
            param="model",
        )
    return Plan(model=model, steps=tuple(steps))


def callable_models(snapshot: RoutingSnapshot, token: TokenInfo, api_format: str) -> list[tuple[str, str]]:
    """(model, first group) for every model this key can call, in the order of its groups."""
    tiers = snapshot.user_group_tiers.get(token.user_group_id, frozenset())
    seen: dict[str, str] = {}
    for position, gid in enumerate(token.group_ids):
        group = snapshot.groups.get(gid)
        if group is None or not _may_use(snapshot, token, group, fallback=position > 0):
            continue
        if group.api_formats and api_format not in group.api_formats:
            continue
        for name in sorted(group.channels):
            model = snapshot.models.get(name)
            if model is None or name in seen:
                continue
            if token.model_allowlist and name not in token.model_allowlist:
                continue
            if model.tier not in tiers or not fits_billing_mode(model.price, token.billing_mode):
                continue
            seen[name] = group.name
    return list(seen.items())
