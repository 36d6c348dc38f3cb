"""Reads about who may use which token group, at which multiplier."""

from decimal import Decimal

from django.db.models import QuerySet

from .models import GroupAccess, TokenGroup, UserGroup


def access_for(*, user_group_id: int | None, token_group: TokenGroup) -> GroupAccess | None:
    if user_group_id is None:
        return None
    return GroupAccess.objects.filter(user_group_id=user_group_id, token_group=token_group).first()


def selectable_token_groups(*, user_group: UserGroup | None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group may pick as a token's select group."""
    if user_group is None:
        return TokenGroup.objects.none()
    return TokenGroup.objects.filter(
        enabled=True,
        fallback_only=False,
        accesses__user_group=user_group,
        accesses__fallback_only=False,
    )


def fallback_token_groups(*, user_group: UserGroup | None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group may attach as fallback groups."""
    if user_group is None:
        return TokenGroup.objects.none()
    return TokenGroup.objects.filter(enabled=True, accesses__user_group=user_group)


def effective_multiplier(*, token_group: TokenGroup, user_group_id: int | None) -> Decimal:
    """The token group's multiplier, or this user group's override of it."""
    access = access_for(user_group_id=user_group_id, token_group=token_group)
    if access is not None and access.multiplier_override is not None:
        return access.multiplier_override
    return token_group.multiplier


def models_by_group(*, group_ids=None) -> dict[int, list[str]]:
    """Names of the enabled models each token group offers through its enabled channels."""
    from .models import ChannelModel

    rows = ChannelModel.objects.filter(channel__enabled=True, model__enabled=True)
    if group_ids is not None:
        rows = rows.filter(channel__token_groups__in=list(group_ids))
    out: dict[int, set[str]] = {}
    for group_id, name in rows.values_list("channel__token_groups", "model__name"):
        if group_id is not None:
            out.setdefault(group_id, set()).add(name)
    return {gid: sorted(names) for gid, names in out.items()}


def groups_offering(*, model_name: str, among: QuerySet[TokenGroup] | None = None) -> list[TokenGroup]:
    """Enabled token groups that offer a model (optionally only among some groups)."""
    qs = among if among is not None else TokenGroup.objects.all()
    return list(
        qs.filter(
            enabled=True,
            channels__enabled=True,
            channels__channel_models__model__name=model_name,
            channels__channel_models__model__enabled=True,
        ).distinct()
    )


def token_callable_models(*, token) -> list[str]:
    """Models this token can really call: offered by its groups, in its user group's tiers,
    in its allowlist (if any) and priced for its billing mode."""
    from billing.pricing import ModelPrice, fits_billing_mode

    from .models import Model

    group_ids = [token.select_group_id, *token.fallbacks.values_list("group_id", flat=True)]
    offered = set()
    for names in models_by_group(group_ids=group_ids).values():
        offered.update(names)
    user_group = token.user.user_group
    tiers = set(user_group.model_tiers) if user_group else set()
    allow = set(token.model_allowlist or [])
    out = []
    for model in Model.objects.filter(name__in=offered, enabled=True):
        if model.tier not in tiers or (allow and model.name not in allow):
            continue
        if fits_billing_mode(ModelPrice.of(model), token.billing_mode):
            out.append(model.name)
    return sorted(out)


def recommend_group(*, model, user_group: UserGroup | None) -> dict:
    """The guide's quick decision for one model: the cheapest group the user may select that
    offers it, plus other groups offering it as fallback candidates."""
    ug_id = user_group.pk if user_group else None
    selectable = groups_offering(model_name=model.name, among=selectable_token_groups(user_group=user_group))
    fallbacks = groups_offering(model_name=model.name, among=fallback_token_groups(user_group=user_group))
    priced = sorted(
        ((effective_multiplier(token_group=g, user_group_id=ug_id), g.sort_order, g) for g in selectable),
        key=lambda row: (row[0], row[1]),
    )
    best = priced[0][2] if priced else None
    tier_ok = bool(user_group and model.tier in (user_group.model_tiers or []))
    return {
        "model": model,
        "group": best,
        "multiplier": priced[0][0] if priced else None,
        "alternatives": [g for _, _, g in priced[1:]],
        "fallbacks": [g for g in fallbacks if g != best],
        "tier_ok": tier_ok,
    }
