"""One FilterSet serves both the console token list and the API token list."""

import django_filters
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .models import BillingMode, Token


class TokenFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label=_("Search"))
    select_group = django_filters.CharFilter(field_name="select_group__name", label=_("Select group"))
    billing_mode = django_filters.ChoiceFilter(label=_("Billing mode"), choices=BillingMode.choices)
    enabled = django_filters.BooleanFilter(label=_("Enabled"))
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("name", "name"), ("last_used_at", "last_used_at")),
        field_labels={"created_at": _("Created"), "name": _("Name"), "last_used_at": _("Last used")},
    )

    class Meta:
        model = Token
        fields = ["q", "select_group", "billing_mode", "enabled"]

    def search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(key_prefix__startswith=value))
