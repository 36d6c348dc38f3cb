"""ModelAdmin base that writes an audit entry (who, before, after) for every change."""

from django.contrib import admin

from core.http import client_ip

from .services import audit_record, audit_snapshot


class AuditedModelAdmin(admin.ModelAdmin):
    def save_model(self, request, obj, form, change):
        before = None
        if change:
            old = type(obj).objects.filter(pk=obj.pk).first()
            before = audit_snapshot(old) if old is not None else None
        super().save_model(request, obj, form, change)
        request._audit_pending = (obj, before, "update" if change else "create")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        pending = getattr(request, "_audit_pending", None)
        if pending is not None:
            obj, before, verb = pending
            obj.refresh_from_db()
            audit_record(
                actor=request.user,
                action=f"{obj._meta.model_name}.{verb}",
                obj=obj,
                before=before,
                after=audit_snapshot(obj),
                ip=client_ip(request),
            )

    def delete_model(self, request, obj):
        before = audit_snapshot(obj)
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.delete",
            obj=obj,
            before=before,
            ip=client_ip(request),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(
                actor=request.user,
                action=f"{obj._meta.model_name}.delete",
                obj=obj,
                before=audit_snapshot(obj),
                ip=client_ip(request),
            )
        super().delete_queryset(request, queryset)
