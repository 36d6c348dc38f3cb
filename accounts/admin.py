from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .admin_audit import AuditedModelAdmin
from .events import user_access_changed
from .models import AuditLog, User


@admin.register(User)
class UserAdmin(AuditedModelAdmin, BaseUserAdmin):
    list_display = ("username", "email", "user_group", "user_group_pinned", "is_staff", "is_active")
    list_filter = ("user_group", "is_staff", "is_active")
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        ("Gateway", {"fields": ("user_group", "user_group_pinned", "rpm_limit")}),
    )

    def save_model(self, request, obj, form, change):
        """The relay caches the user group, active flag and rate limit with each key."""
        super().save_model(request, obj, form, change)
        if change:
            user_access_changed.send(sender=User, user_id=obj.pk)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "object_type", "object_repr", "ip")
    list_filter = ("action", "object_type")
    search_fields = ("actor_name", "object_repr", "action")
    readonly_fields = [f.name for f in AuditLog._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
