from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from apiyi_admin import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
