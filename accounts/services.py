"""Writes for accounts: users, management keys, audit entries."""

import zoneinfo
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext as _

from core.keys import display_prefix, generate_key, hash_key

from .events import user_access_changed, user_created
from .models import AuditLog, ManagementKey, User


def audit_snapshot(obj, exclude: tuple[str, ...] = ()) -> dict:
    """A JSON-safe dict of a model instance for audit before/after, secrets left out."""
    data = model_to_dict(obj)
    hidden = {"password", "key_hash", "api_key_encrypted", *exclude}
    out = {}
    for key, value in data.items():
        if key in hidden:
            continue
        if isinstance(value, list):
            value = [getattr(v, "pk", v) for v in value]
        elif hasattr(value, "pk"):
            value = value.pk
        out[key] = value if isinstance(value, (int, float, bool, type(None), list, dict)) else str(value)
    return out


def audit_record(
    *,
    actor: User | None,
    action: str,
    obj=None,
    before: dict | None = None,
    after: dict | None = None,
    ip: str | None = None,
    object_repr: str = "",
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None and actor.pk else "system",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        before=before,
        after=after,
        ip=ip,
    )


@transaction.atomic
def user_create(*, username: str, password: str | None = None, user_group=None, **extra) -> User:
    if user_group is None:
        # The user group model is groups' (a layer above); the foreign key names it.
        user_group = User.user_group.field.related_model._default_manager.filter(name="default").first()
    user = User(username=username, user_group=user_group, **extra)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user_created.send(sender=User, user=user)
    return user


MANAGEMENT_KEY_PREFIX = "mk-"
MANAGEMENT_KEY_TOUCH_S = 60


@transaction.atomic
def management_key_create(*, user: User, name: str, read_only: bool = False, expires_at=None):
    """Create an mk- key; returns it with the raw key, which is never stored or shown again."""
    name = (name or "").strip()[:100] or "automation"
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Expiry must be in the future."})
    raw = generate_key(MANAGEMENT_KEY_PREFIX)
    key = ManagementKey.objects.create(
        user=user,
        name=name,
        key_prefix=display_prefix(raw),
        key_hash=hash_key(raw),
        read_only=bool(read_only),
        expires_at=expires_at,
    )
    audit_record(
        actor=user,
        action="management_key.create",
        obj=key,
        after={
            "name": name,
            "read_only": key.read_only,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, raw


@transaction.atomic
def management_key_revoke(*, key, actor: User | None = None) -> None:
    """Stop a key working at once; the row stays so the audit trail can name it."""
    if key.revoked_at is not None:
        return
    key.revoked_at = timezone.now()
    key.save(update_fields=["revoked_at"])
    audit_record(actor=actor or key.user, action="management_key.revoke", obj=key)


def management_key_authenticate(raw: str):
    """The live key for a raw mk- key, or None. Records use at most once a minute."""
    if not raw.startswith(MANAGEMENT_KEY_PREFIX) or len(raw) > 200:
        return None
    now = timezone.now()
    key = (
        ManagementKey.objects.select_related("user", "user__user_group")
        .filter(key_hash=hash_key(raw), revoked_at__isnull=True, user__is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .first()
    )
    if key is None:
        return None
    stale = now - timedelta(seconds=MANAGEMENT_KEY_TOUCH_S)
    if key.last_used_at is None or key.last_used_at < stale:
        ManagementKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key


USER_OPERATOR_FIELDS = ("user_group", "user_group_pinned", "rpm_limit", "is_active")


@transaction.atomic
def user_operator_update(*, actor: User, user: User, ip: str | None = None, **fields) -> User:
    """Operator change of a user's user group, pin, rate limit or active flag, audited.

    Staff and superuser flags are deliberately not settable here.
    """
    unknown = set(fields) - set(USER_OPERATOR_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in sorted(unknown)})
    if fields.get("is_active") is False and user.pk == actor.pk:
        raise ValidationError({"is_active": "You cannot deactivate your own account."})
    user = User.objects.select_for_update().get(pk=user.pk)
    before = audit_snapshot(user, exclude=("groups", "user_permissions", "last_login"))
    for name, value in fields.items():
        setattr(user, name, value)
    user.full_clean(exclude=["password"])
    user.save()
    user_access_changed.send(sender=User, user_id=user.pk)
    audit_record(
        actor=actor,
        action="user.update",
        obj=user,
        before=before,
        after=audit_snapshot(user, exclude=("groups", "user_permissions", "last_login")),
        ip=ip,
    )
    return user


def user_preferences_update(*, user: User, time_zone: str) -> User:
    """The customer's own display settings; an unknown zone is refused."""
    if time_zone and time_zone not in zoneinfo.available_timezones():
        raise ValidationError({"time_zone": _("%(zone)s is not a known time zone.") % {"zone": time_zone}})
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return user


@transaction.atomic
def user_token_group_grant(*, actor: User, user: User, token_group, ip: str | None = None) -> None:
    """Let this one user use a token group their user group has no access to (audited); the
    routing snapshot is rebuilt through the m2m signal, so the relay honours it at once."""
    if user.extra_token_groups.filter(pk=token_group.pk).exists():
        return
    user.extra_token_groups.add(token_group)
    audit_record(
        actor=actor,
        action="user.grant_token_group",
        obj=user,
        after={"token_group": token_group.name},
        ip=ip,
    )


@transaction.atomic
def user_token_group_revoke(*, actor: User, user: User, token_group, ip: str | None = None) -> None:
    """Withdraw a per-user grant (audited); tokens using the group are refused `access` again."""
    if not user.extra_token_groups.filter(pk=token_group.pk).exists():
        return
    user.extra_token_groups.remove(token_group)
    audit_record(
        actor=actor,
        action="user.revoke_token_group",
        obj=user,
        before={"token_group": token_group.name},
        ip=ip,
    )
