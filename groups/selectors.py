"""Reads about who may use which token group, at which multiplier, offering which models.

Every answer comes from the routing policy (`groups.policy`) over the routing snapshot, the
same rules the relay plans with; these helpers only hand back ORM rows for the console.
"""

from decimal import Decimal

from django.db.models import QuerySet

from . import policy
from .models import GroupAccess, TokenGroup, UserGroup
from .routing import get_snapshot


def _ug_id(user_group: UserGroup | None) -> int | None:
    return user_group.pk if user_group else None


def _rows(groups: list) -> list[TokenGroup]:
    """ORM rows for policy groups, in the policy's order."""
    by_id = TokenGroup.objects.in_bulk([g.id for g in groups])
    return [by_id[g.id] for g in groups if g.id in by_id]


def selectable_token_groups(*, user_group: UserGroup | None, user=None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group (with `user`, plus their own grants) may pick as a
    token's select group."""
    snapshot = get_snapshot()
    uid = user.pk if user else None
    ids = [g.id for g in policy.usable_groups(snapshot, _ug_id(user_group), fallback=False, user_id=uid)]
    return TokenGroup.objects.filter(pk__in=ids)


def fallback_token_groups(*, user_group: UserGroup | None, user=None) -> QuerySet[TokenGroup]:
    """Groups a user of this user group (with `user`, plus their own grants) may attach as
    fallback groups."""
    snapshot = get_snapshot()
    uid = user.pk if user else None
    ids = [g.id for g in policy.usable_groups(snapshot, _ug_id(user_group), fallback=True, user_id=uid)]
    return TokenGroup.objects.filter(pk__in=ids)


def effective_multiplier(*, token_group: TokenGroup, user_group_id: int | None) -> Decimal:
    """The token group's multiplier, or this user group's override of it."""
    access = GroupAccess.objects.filter(user_group_id=user_group_id, token_group=token_group).first()
    if access is not None and access.multiplier_override is not None:
        return access.multiplier_override
    return token_group.multiplier


def models_by_group(*, group_ids) -> dict[int, list[str]]:
    """Names of the models each token group offers (enabled, not auto-disabled channels)."""
    snapshot = get_snapshot()
    out = {gid: policy.group_models(snapshot, gid) for gid in group_ids}
    return {gid: names for gid, names in out.items() if names}


def offering_token_groups(
    *, model_name: str, user_group: UserGroup | None, fallback: bool = True, user=None
) -> list[TokenGroup]:
    """Groups this user group (with `user`, plus their grants) may use (with `fallback`, also
    as fallbacks) that offer a model."""
    snapshot = get_snapshot()
    uid = user.pk if user else None
    return _rows(
        policy.groups_offering(snapshot, _ug_id(user_group), model_name, fallback=fallback, user_id=uid)
    )


def serving_token_groups(*, model_name: str) -> list[TokenGroup]:
    """Every enabled token group that offers a model (operator pages, price checks)."""
    return _rows(policy.serving_groups(get_snapshot(), model_name))


def channel_sole_routes(*, channel_id: int) -> list[tuple[str, str]]:
    """(group, model) pairs this channel is the last enabled channel for: disabling it leaves
    them with no capacity at all."""
    snapshot = get_snapshot()
    out = []
    for group in snapshot.groups.values():
        for model in sorted(group.channels):
            ids = {c.id for c in policy.serving_channels(group, model)}
            if ids == {channel_id}:
                out.append((group.name, model))
    return sorted(out, key=lambda row: (row[0].lower(), row[1]))


def token_callable_models(*, token) -> list[str]:
    """Models this token can really call: exactly what `/v1/models` lists for it."""
    return sorted(name for name, _ in policy.callable_models(get_snapshot(), policy.Caller.of_token(token)))


def recommend_group(*, model, user_group: UserGroup | None) -> dict:
    """The guide's quick decision for one model: the cheapest group the user may select that
    offers it, plus other groups offering it as fallback candidates."""
    snapshot = get_snapshot()
    ug_id = _ug_id(user_group)
    selectable = offering_token_groups(model_name=model.name, user_group=user_group, fallback=False)
    fallbacks = offering_token_groups(model_name=model.name, user_group=user_group)
    priced = sorted(
        ((effective_multiplier(token_group=g, user_group_id=ug_id), g.sort_order, g) for g in selectable),
        key=lambda row: (row[0], row[1]),
    )
    best = priced[0][2] if priced else None
    return {
        "model": model,
        "group": best,
        "multiplier": priced[0][0] if priced else None,
        "alternatives": [g for _, _, g in priced[1:]],
        "fallbacks": [g for g in fallbacks if g != best],
        "tier_ok": model.tier in snapshot.user_group_tiers.get(ug_id, frozenset()),
    }
