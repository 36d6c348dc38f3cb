import django_filters

from groups.models import ChannelHealth


class ChannelHealthFilter(django_filters.FilterSet):
    channel = django_filters.CharFilter(field_name="channel__name")
    verdict = django_filters.CharFilter()
    routing_verdict = django_filters.CharFilter()
    date_from = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")
    ordering = django_filters.OrderingFilter(fields=(("at", "at"), ("latency_ms", "latency")))

    class Meta:
        model = ChannelHealth
        fields = ["channel", "verdict", "routing_verdict", "date_from", "date_to"]
