"""FilterSets shared by the operator console lists and the operator API lists."""

import django_filters

from .models import Channel, ChannelKind, Model, ModelKind, ModelTier, TokenGroup, UserGroup


class ChannelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices)
    group = django_filters.CharFilter(field_name="token_groups__name", label="Token group")
    model = django_filters.CharFilter(field_name="served_models__name", label="Model")
    enabled = django_filters.BooleanFilter()
    auto_disabled = django_filters.BooleanFilter()
    ordering = django_filters.OrderingFilter(fields=(("name", "name"), ("priority", "priority")))

    class Meta:
        model = Channel
        fields = ["q", "kind", "group", "model", "enabled", "auto_disabled"]


class ModelFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    kind = django_filters.ChoiceFilter(choices=ModelKind.choices)
    tier = django_filters.ChoiceFilter(choices=ModelTier.choices)
    group = django_filters.CharFilter(
        field_name="channels__token_groups__name", label="Offered by group", distinct=True
    )
    ordering = django_filters.OrderingFilter(fields=(("name", "name"),))

    class Meta:
        model = Model
        fields = ["q", "kind", "tier", "group"]


class TokenGroupFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")
    fallback_only = django_filters.BooleanFilter()
    enabled = django_filters.BooleanFilter()
    ordering = django_filters.OrderingFilter(fields=(("name", "name"), ("multiplier", "multiplier")))

    class Meta:
        model = TokenGroup
        fields = ["q", "fallback_only", "enabled"]


class UserGroupFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = UserGroup
        fields = ["q"]
