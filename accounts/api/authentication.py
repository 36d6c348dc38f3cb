"""DRF authentication with mk- management keys (Authorization: Bearer mk-…).

Relay sk- keys are refused here on purpose: they authorise model calls, never account changes.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from accounts.services import MANAGEMENT_KEY_PREFIX, management_key_authenticate


class ManagementKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer mk-…'.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid management key.") from None
        if not raw.startswith(MANAGEMENT_KEY_PREFIX):
            raise exceptions.AuthenticationFailed(
                "Only mk- management keys authenticate this API; sk- keys are for the relay (/v1/)."
            )
        key = management_key_authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked management key.")
        return key.user, key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ManagementKeyScheme(OpenApiAuthenticationExtension):
    target_class = ManagementKeyAuthentication
    name = "managementKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An mk- management key."}
