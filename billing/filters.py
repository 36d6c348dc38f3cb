"""FilterSets shared by the console lists and the API lists."""

import django_filters

from .models import LedgerEntry, LedgerKind, UsageRecord, UsageStatus


class UsageRecordFilter(django_filters.FilterSet):
    # Bounded so an absurd id is a 400, not a database overflow.
    token = django_filters.NumberFilter(field_name="token_id", min_value=1, max_value=2**63 - 1)
    model = django_filters.CharFilter(field_name="model_name")
    group = django_filters.CharFilter(field_name="group_name")
    status = django_filters.ChoiceFilter(choices=UsageStatus.choices)
    fallback_used = django_filters.BooleanFilter()
    request_id = django_filters.CharFilter()
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("cost_micro", "cost"), ("latency_ms", "latency"))
    )

    class Meta:
        model = UsageRecord
        fields = ["token", "model", "group", "status", "fallback_used", "request_id", "date_from", "date_to"]


class LedgerEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=LedgerKind.choices)
    request_id = django_filters.CharFilter()
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(fields=(("id", "id"), ("created_at", "created_at")))

    class Meta:
        model = LedgerEntry
        fields = ["kind", "request_id", "date_from", "date_to"]
