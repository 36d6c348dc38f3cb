"""Security headers Django has no setting for (CSP comes from django-csp)."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings


class PermissionsPolicyMiddleware:
    """Adds `Permissions-Policy`: the console needs no camera, microphone, location or payment API.

    Sync and async capable, so the async relay views are not pushed through a thread.
    """

    async_capable = True
    sync_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return self._add(self.get_response(request))

    async def _acall(self, request):
        return self._add(await self.get_response(request))

    def _add(self, response):
        if self.policy:
            response.headers.setdefault("Permissions-Policy", self.policy)
        return response
