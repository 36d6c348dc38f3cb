import django_filters

from .models import AuditLog, User


class AuditLogFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith")
    actor = django_filters.CharFilter(field_name="actor_name")
    object_type = django_filters.CharFilter()
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditLog
        fields = ["action", "actor", "object_type", "date_from", "date_to"]


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="username", lookup_expr="icontains", label="Search")
    user_group = django_filters.CharFilter(field_name="user_group__name")
    is_staff = django_filters.BooleanFilter()

    class Meta:
        model = User
        fields = ["q", "user_group", "is_staff"]
