"""FilterSets shared by the console lists and the API lists."""

import django_filters
from django.utils.translation import gettext_lazy as _

from .models import LedgerEntry, LedgerKind, UsageRecord, UsageStatus


class UsageRecordFilter(django_filters.FilterSet):
    # Bounded so an absurd id is a 400, not a database overflow.
    token = django_filters.NumberFilter(
        field_name="token_id", min_value=1, max_value=2**63 - 1, label=_("Token id")
    )
    model = django_filters.CharFilter(field_name="model_name", label=_("Model"))
    group = django_filters.CharFilter(field_name="group_name", label=_("Group used"))
    status = django_filters.ChoiceFilter(choices=UsageStatus.choices, label=_("Status"))
    fallback_used = django_filters.BooleanFilter(label=_("Fallback used"))
    request_id = django_filters.CharFilter(label=_("Request id"))
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("cost_micro", "cost"), ("latency_ms", "latency")),
        field_labels={"created_at": _("Time"), "cost_micro": _("Cost"), "latency_ms": _("Latency")},
    )

    class Meta:
        model = UsageRecord
        fields = ["token", "model", "group", "status", "fallback_used", "request_id", "date_from", "date_to"]


class LedgerEntryFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=LedgerKind.choices, label=_("Kind"))
    request_id = django_filters.CharFilter(label=_("Request id"))
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(
        fields=(("id", "id"), ("created_at", "created_at")),
        field_labels={"id": _("Entry"), "created_at": _("Time")},
    )

    class Meta:
        model = LedgerEntry
        fields = ["kind", "request_id", "date_from", "date_to"]
