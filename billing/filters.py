"""FilterSets shared by the console lists and the API lists."""

from __future__ import annotations

import django_filters
from django import forms
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


class OpsUsageFilter(UsageRecordFilter):
    """The customer's usage filters plus the user, over every account."""

    class Meta(UsageRecordFilter.Meta):
        fields = ["user", *UsageRecordFilter.Meta.fields]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.filters["user"].label = _("User")


def usage_filter(params, *, user=None) -> UsageRecordFilter:
    """The usage log's filters for the console: one user's calls, their tokens, models and groups
    offered as choices (the CSV export filters the same way), or with no user every account's
    calls and a user choice, for operators. Both pick dates with the browser's date-time input."""
    from accounts.models import User
    from tokens.models import Token

    from .selectors import usage_for_user

    if user is None:
        filt: UsageRecordFilter = OpsUsageFilter(
            params, queryset=UsageRecord.objects.select_related("user", "token")
        )
        fields = filt.form.fields
        fields["user"].queryset = User.objects.order_by("username")
    else:
        filt = UsageRecordFilter(params, queryset=usage_for_user(user=user))
        fields = filt.form.fields
        fields["token"] = forms.TypedChoiceField(
            required=False,
            coerce=int,
            empty_value=None,
            label=_("Token"),
            choices=[("", _("any token"))]
            + [(t.pk, t.name) for t in Token.objects.filter(user=user).only("pk", "name")],
        )
        mine = usage_for_user(user=user).order_by()
        for name, column in (("model", "model_name"), ("group", "group_name")):
            values = sorted(v for v in mine.values_list(column, flat=True).distinct() if v)
            fields[name] = forms.ChoiceField(
                required=False, label=fields[name].label, choices=[("", _("any")), *[(v, v) for v in values]]
            )
    for name in ("date_from", "date_to"):
        fields[name].widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    fields["fallback_used"].widget.choices = [("", _("any")), ("true", _("yes")), ("false", _("no"))]
    return filt


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
