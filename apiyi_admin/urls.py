from django.contrib import admin
from django.urls import include, path, re_path

from apiyi_admin import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("v1/", include("relay.urls")),
    re_path(r"^v1beta(?:/|$)", include("relay.gemini_urls")),
    path("api/", include("apiyi_admin.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    # Language switcher: Django's CSRF-protected set_language view (POST, works without JS).
    path("i18n/", include("django.conf.urls.i18n")),
    # Browser console (server-rendered, htmx): home, login, user and operator pages.
    path("", include("accounts.urls")),
    path("tokens/", include("tokens.urls")),
    path("", include("billing.urls")),
    path("", include("groups.urls")),
]
