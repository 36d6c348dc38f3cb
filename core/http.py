"""Request helpers shared by the console, the management API, the admin and the relay."""

import ipaddress


def client_ip(request) -> str | None:
    """The caller's address (django-axes' view of it when set), or None when absent or not an IP."""
    if request is None:
        return None
    raw = getattr(request, "axes_ip_address", None) or request.META.get("REMOTE_ADDR")
    try:
        return str(ipaddress.ip_address(raw)) if raw else None
    except ValueError:
        return None
