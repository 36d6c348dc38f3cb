"""Token groups and models for users, with the final price in each group they may use.

The catalog lives in billing, above groups: a final price needs the customer's recharge bonus.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from accounts.models import User
from core.pricing import explain_ratio, ratio_to_official
from groups.api.serializers import CatalogModelSerializer, TokenGroupCatalogSerializer
from groups.filters import ModelFilter
from groups.models import Model, TokenGroup
from groups.quotes import explain_price
from groups.selectors import (
    effective_multiplier,
    fallback_token_groups,
    models_by_group,
    selectable_token_groups,
)

from ..selectors import best_bonus_percent, user_bonus_percent

_RATIO_PLACES = Decimal("0.0001")


def _usable_groups(user) -> tuple[list[TokenGroup], set[int]]:
    """Every token group the user may use, and the ids of those they may select."""
    user_group = user.user_group
    groups = list(fallback_token_groups(user_group=user_group, user=user).distinct())
    selectable = set(selectable_token_groups(user_group=user_group, user=user).values_list("pk", flat=True))
    return groups, selectable


def _group_entry(group: TokenGroup, *, user, selectable: set[int], models: list[Model]) -> dict:
    ug_id = user.user_group_id
    tiers = set(user.user_group.model_tiers) if user.user_group else set()
    multiplier = effective_multiplier(token_group=group, user_group_id=ug_id)
    bonus = user_bonus_percent(user=user)
    return {
        "name": group.name,
        "description": group.description,
        "api_formats": group.api_formats,
        "multiplier": str(multiplier),
        "ratio_to_official": str(ratio_to_official(multiplier, bonus).quantize(_RATIO_PLACES)),
        "sentence": explain_ratio(multiplier, bonus),
        "selectable": group.pk in selectable,
        "models": [
            {
                "name": m.name,
                "kind": m.kind,
                "tier": m.tier,
                "available": m.tier in tiers,
                "price": explain_price(
                    model=m, group=group, user_group_id=ug_id, bonus_percent=bonus
                ).as_dict(),
            }
            for m in models
        ],
    }


def _models_of(groups: list[TokenGroup]) -> dict[int, list[Model]]:
    names = models_by_group(group_ids=[g.pk for g in groups])
    by_name = {m.name: m for m in Model.objects.filter(name__in={n for ns in names.values() for n in ns})}
    return {g.pk: [by_name[n] for n in names.get(g.pk, []) if n in by_name] for g in groups}


class GroupViewSet(viewsets.ViewSet):
    """Token groups you may use: your multiplier, formats, and each model's final price."""

    lookup_field = "name"
    lookup_value_regex = "[^/]+"

    @extend_schema(responses=TokenGroupCatalogSerializer(many=True))
    def list(self, request):
        groups, selectable = _usable_groups(request.user)
        models = _models_of(groups)
        data = [
            _group_entry(g, user=request.user, selectable=selectable, models=models[g.pk]) for g in groups
        ]
        return Response(TokenGroupCatalogSerializer(data, many=True).data)

    @extend_schema(responses=TokenGroupCatalogSerializer)
    def retrieve(self, request, name=None):
        groups, selectable = _usable_groups(request.user)
        group = next((g for g in groups if g.name == name), None)
        if group is None:
            return Response({"detail": "Not found.", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND)
        entry = _group_entry(
            group, user=request.user, selectable=selectable, models=_models_of([group])[group.pk]
        )
        return Response(TokenGroupCatalogSerializer(entry).data)


class ModelCatalogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The model catalog with official prices and your final price in each group you may use."""

    serializer_class = CatalogModelSerializer
    filterset_class = ModelFilter
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    queryset = Model.objects.filter(enabled=True)

    def _entries(self, models: list[Model]) -> list[dict]:
        user = cast(User, self.request.user)  # signed in: the API's default permission
        groups, _ = _usable_groups(user)
        offered = _models_of(groups)
        tiers = set(user.user_group.model_tiers) if user.user_group else set()
        bonus = best_bonus_percent()
        out = []
        for m in models:
            prices = [
                explain_price(
                    model=m, group=g, user_group_id=user.user_group_id, bonus_percent=bonus
                ).as_dict()
                for g in groups
                if any(o.pk == m.pk for o in offered[g.pk])
            ]
            out.append(
                {
                    "name": m.name,
                    "kind": m.kind,
                    "tier": m.tier,
                    "description": m.description,
                    "available": m.tier in tiers,
                    "official": m,
                    "prices": prices,
                }
            )
        return out

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(self._entries(list(page)), many=True).data)

    def retrieve(self, request, name=None):
        model = self.get_object()
        return Response(self.get_serializer(self._entries([model])[0]).data)
