"""Who may call the operator API: staff only, and read-only management keys never write."""

from rest_framework import permissions

from accounts.models import ManagementKey


class IsOperator(permissions.BasePermission):
    """Operator resources: staff only (403 for everyone else who is signed in)."""

    message = "Operators only."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


class KeyScope(permissions.BasePermission):
    """A read-only management key may read (and ask for quotes) but never write."""

    message = "This management key is read-only."
    code = "read_only_key"

    def has_permission(self, request, view):
        key = request.auth
        if not isinstance(key, ManagementKey) or not key.read_only:
            return True
        return request.method in permissions.SAFE_METHODS or getattr(view, "read_only_safe", False)


OPERATOR_PERMISSIONS = [permissions.IsAuthenticated, KeyScope, IsOperator]
