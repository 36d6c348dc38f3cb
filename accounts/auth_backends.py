"""Login throttling: django-axes' lockout check, first in AUTHENTICATION_BACKENDS."""

from axes.backends import AxesStandaloneBackend


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuses a locked-out username+IP before any password is checked.

    Authentication without a request (the test client's `login()`, a shell) has no client
    address to throttle, so it is passed on to the next backend instead of raising.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
