"""Deploy check: behind a proxy the request's own origin may not be the URL customers call."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def public_base_url_set(app_configs, **kwargs):
    if settings.PRODUCTION and not settings.PUBLIC_BASE_URL:
        return [
            Warning(
                "PUBLIC_BASE_URL is not set: code examples will show the origin each request arrived at.",
                hint="Set PUBLIC_BASE_URL to the gateway's public URL, e.g. https://gateway.example.com.",
                id="tokens.W001",
            )
        ]
    return []
