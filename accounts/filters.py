import django_filters
from django.utils.translation import gettext_lazy as _

from .models import AuditLog, User


class AuditLogFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(lookup_expr="startswith", label=_("Action"))
    actor = django_filters.CharFilter(field_name="actor_name", label=_("Actor"))
    object_type = django_filters.CharFilter(label=_("Object type"))
    date_from = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte", label=_("From"))
    date_to = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt", label=_("Until"))

    class Meta:
        model = AuditLog
        fields = ["action", "actor", "object_type", "date_from", "date_to"]


class UserFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="username", lookup_expr="icontains", label=_("Search"))
    user_group = django_filters.CharFilter(field_name="user_group__name", label=_("User group"))
    is_staff = django_filters.BooleanFilter(label=_("Staff"))

    class Meta:
        model = User
        fields = ["q", "user_group", "is_staff"]
