from django.contrib import admin
from django.urls import include, path

from apiyi_admin import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include("relay.urls")),
    path("api/", include("apiyi_admin.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    # Browser console (server-rendered, htmx): home, login, user and operator pages.
    path("", include("accounts.urls")),
    path("tokens/", include("tokens.urls")),
    path("", include("billing.urls")),
    path("", include("groups.urls")),
]
