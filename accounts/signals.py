"""Audit entries for logins, failed logins and logouts, from Django's auth signals.

Infrastructure, not a business rule: whatever login view or backend is used, every
attempt lands in the append-only audit log with the client address. The attempted
username is stored only if it does not look like a key someone pasted by mistake.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from core.http import client_ip

from .services import audit_record

KEY_PREFIXES = ("sk-", "mk-")


def safe_username(text) -> str:
    """The attempted username, unless it looks like a secret (a key or something long)."""
    text = str(text or "")
    if text.lower().startswith(KEY_PREFIXES) or len(text) > 64:
        return "(hidden: looks like a key)"
    return text


@receiver(user_logged_in, dispatch_uid="accounts-audit-login")
def _audit_login(sender, request, user, **kwargs):
    audit_record(actor=user, action="auth.login", obj=user, ip=client_ip(request))


@receiver(user_logged_out, dispatch_uid="accounts-audit-logout")
def _audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(actor=user, action="auth.logout", obj=user, ip=client_ip(request))


@receiver(user_login_failed, dispatch_uid="accounts-audit-login-failed")
def _audit_login_failed(sender, credentials, request=None, **kwargs):
    model = get_user_model()
    username = safe_username(credentials.get(model.USERNAME_FIELD) or credentials.get("username"))
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first() if username else None
    audit_record(
        actor=None,
        action="auth.login_failed",
        obj=user,
        object_repr=f"login as {username!r}",
        after={"username": username},
        ip=client_ip(request),
    )


def axes_username(request, credentials=None) -> str:
    """AXES_USERNAME_CALLABLE: the lockout table never stores a key typed as a username."""
    source = credentials if credentials else getattr(request, "POST", {})
    return safe_username(source.get(get_user_model().USERNAME_FIELD) or source.get("username"))
