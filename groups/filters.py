"""FilterSets shared by the operator console lists and the operator API lists."""

import django_filters
from django.utils.translation import gettext_lazy as _

from .models import Channel, ChannelKind, Model, ModelKind, ModelTier, TokenGroup, UserGroup


class ChannelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label=_("Search"))
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices, label=_("Kind"))
    group = django_filters.CharFilter(field_name="token_groups__name", label=_("Token group"))
    model = django_filters.CharFilter(field_name="served_models__name", label=_("Model"))
    enabled = django_filters.BooleanFilter(label=_("Enabled"))
    auto_disabled = django_filters.BooleanFilter(label=_("Auto-disabled"))
    ordering = django_filters.OrderingFilter(fields=(("name", "name"), ("priority", "priority")))

    class Meta:
        model = Channel
        fields = ["q", "kind", "group", "model", "enabled", "auto_disabled"]


class ModelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label=_("Search"))
    kind = django_filters.ChoiceFilter(choices=ModelKind.choices, label=_("Kind"))
    tier = django_filters.ChoiceFilter(choices=ModelTier.choices, label=_("Tier"))
    group = django_filters.CharFilter(
        field_name="channels__token_groups__name", label=_("Offered by group"), distinct=True
    )
    ordering = django_filters.OrderingFilter(fields=(("name", "name"),))

    class Meta:
        model = Model
        fields = ["q", "kind", "tier", "group"]


class TokenGroupFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label=_("Search"))
    fallback_only = django_filters.BooleanFilter(label=_("Fallback only"))
    enabled = django_filters.BooleanFilter(label=_("Enabled"))
    ordering = django_filters.OrderingFilter(fields=(("name", "name"), ("multiplier", "multiplier")))

    class Meta:
        model = TokenGroup
        fields = ["q", "fallback_only", "enabled"]


class UserGroupFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label=_("Search"))

    class Meta:
        model = UserGroup
        fields = ["q"]
