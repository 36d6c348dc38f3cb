from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from apiyi_admin import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include("relay.urls")),
    path("api/", include("apiyi_admin.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
