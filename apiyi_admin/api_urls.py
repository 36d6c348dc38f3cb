"""The automation API under /api/v1/, its OpenAPI schema and offline docs (Swagger UI, ReDoc).

The docs pages load everything from our own static files (sidecar package, no CDN). Both
renderers inject inline styles, and ReDoc runs its search in a blob: worker, so only these
two pages relax the site's CSP for styles and workers; scripts stay same-origin.
"""

from csp.decorators import csp_update
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}

urlpatterns = [
    path("v1/", include("accounts.api.urls")),
    path("v1/", include("tokens.api.urls")),
    path("v1/", include("groups.api.urls")),
    path("v1/", include("billing.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        csp_update(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "redoc/",
        csp_update(DOCS_CSP)(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html")
        ),
        name="api-redoc",
    ),
]
