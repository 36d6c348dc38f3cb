"""Writes for accounts: users, user-group upgrades, audit entries."""

from django.db import transaction
from django.forms.models import model_to_dict

from .models import AuditLog, User


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


def user_apply_upgrade_rules(*, user: User, total_recharged_micro: int) -> bool:
    """Move the user up to the highest user group whose threshold they reached.

    Never downgrades, and leaves pinned users alone. Returns whether it changed.
    """
    from groups.models import UserGroupUpgradeRule

    if user.user_group_pinned:
        return False
    rule = (
        UserGroupUpgradeRule.objects.filter(min_total_recharge_micro__lte=total_recharged_micro)
        .select_related("user_group")
        .order_by("-min_total_recharge_micro")
        .first()
    )
    if rule is None or rule.user_group_id == user.user_group_id:
        return False
    current = UserGroupUpgradeRule.objects.filter(user_group_id=user.user_group_id).first()
    if current is not None and current.min_total_recharge_micro >= rule.min_total_recharge_micro:
        return False
    before = user.user_group.name if user.user_group_id else None
    user.user_group = rule.user_group
    user.save(update_fields=["user_group"])
    audit_record(
        actor=None,
        action="user_group.upgrade",
        obj=user,
        before={"user_group": before},
        after={"user_group": rule.user_group.name},
    )
    return True


@transaction.atomic
def user_create(*, username: str, password: str | None = None, user_group=None, **extra) -> User:
    from billing.services import wallet_get_or_create

    if user_group is None:
        from groups.models import UserGroup

        user_group = UserGroup.objects.filter(name="default").first()
    user = User(username=username, user_group=user_group, **extra)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    wallet_get_or_create(user=user)
    return user
