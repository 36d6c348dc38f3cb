from django.contrib import admin

from .models import VideoJob


@admin.register(VideoJob)
class VideoJobAdmin(admin.ModelAdmin):
    """Read-only: jobs change only through the relay and its polling task."""

    list_display = ("id", "created_at", "user", "model_name", "group_name", "seconds", "status", "cost_micro")
    list_filter = ("status", "group_name")
    search_fields = ("id", "request_id", "user__username", "upstream_job_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
