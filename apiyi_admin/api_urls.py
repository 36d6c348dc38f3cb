"""The automation API under /api/v1/, its OpenAPI schema and offline docs (Swagger UI, ReDoc)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("tokens.api.urls")),
    path("v1/", include("groups.api.urls")),
    path("v1/", include("billing.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
]
