"""Operator writes for routing configuration: validated, audited, one transaction each.

The admin, the console and the REST API all change groups, models and channels through
these functions, so the same rules and the same audit trail apply everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.events import user_access_changed
from accounts.models import User
from accounts.services import audit_record, audit_snapshot

from .models import (
    API_FORMATS,
    PRICE_FIELDS,
    Channel,
    ChannelModel,
    GroupAccess,
    Model,
    ModelTier,
    TokenGroup,
    UserGroup,
    UserGroupUpgradeRule,
)
from .saturation import verdict_clear_auth_error
from .urlsafety import channel_base_url_check


def _apply(obj, fields: Mapping, allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in sorted(unknown)})
    for name, value in fields.items():
        setattr(obj, name, value)


def _save_audited(obj, *, actor, action: str, before: dict | None) -> None:
    obj.full_clean()
    obj.save()
    audit_record(actor=actor, action=action, obj=obj, before=before, after=audit_snapshot(obj))


def _check_formats(formats) -> None:
    if not isinstance(formats, list) or not formats or set(formats) - set(API_FORMATS):
        raise ValidationError({"api_formats": f"Choose one or more of: {', '.join(API_FORMATS)}."})


def _check_tiers(tiers) -> None:
    if not isinstance(tiers, list) or set(tiers) - set(ModelTier.values):
        raise ValidationError({"model_tiers": f"Tiers must be among: {', '.join(ModelTier.values)}."})


USER_GROUP_FIELDS = ("name", "description", "model_tiers", "sort_order")
TOKEN_GROUP_FIELDS = (
    "name",
    "description",
    "multiplier",
    "api_formats",
    "fallback_only",
    "enabled",
    "sort_order",
)
MODEL_FIELDS = (
    "name",
    "kind",
    "tier",
    "description",
    "enabled",
    "max_output_tokens",
    *PRICE_FIELDS,
)
CHANNEL_FIELDS = (
    "name",
    "kind",
    "base_url",
    "priority",
    "weight",
    "max_concurrency",
    "enabled",
    "auto_reenable",
    "allow_private_network",
    "probe_interval_s",
    "latency_threshold_ms",
)


@transaction.atomic
def user_group_save(*, actor, user_group: UserGroup | None = None, **fields) -> UserGroup:
    obj = user_group or UserGroup()
    before = audit_snapshot(obj) if obj.pk else None
    _apply(obj, fields, USER_GROUP_FIELDS)
    _check_tiers(obj.model_tiers)
    _save_audited(
        obj, actor=actor, action="user_group.update" if before else "user_group.create", before=before
    )
    return obj


@transaction.atomic
def group_access_set(
    *,
    actor,
    user_group: UserGroup,
    token_group: TokenGroup,
    fallback_only: bool = False,
    multiplier_override=None,
) -> GroupAccess:
    """Let a user group use a token group (optionally only as fallback, at an override)."""
    access = GroupAccess.objects.filter(user_group=user_group, token_group=token_group).first()
    before = audit_snapshot(access) if access else None
    access = access or GroupAccess(user_group=user_group, token_group=token_group)
    access.fallback_only = fallback_only
    access.multiplier_override = multiplier_override
    _save_audited(access, actor=actor, action="group_access.set", before=before)
    return access


@transaction.atomic
def group_access_remove(*, actor, user_group: UserGroup, token_group: TokenGroup) -> None:
    access = GroupAccess.objects.filter(user_group=user_group, token_group=token_group).first()
    if access is not None:
        audit_record(actor=actor, action="group_access.remove", obj=access, before=audit_snapshot(access))
        access.delete()


@transaction.atomic
def token_group_save(*, actor, token_group: TokenGroup | None = None, **fields) -> TokenGroup:
    obj = token_group or TokenGroup()
    before = audit_snapshot(obj) if obj.pk else None
    _apply(obj, fields, TOKEN_GROUP_FIELDS)
    _check_formats(obj.api_formats)
    _save_audited(
        obj, actor=actor, action="token_group.update" if before else "token_group.create", before=before
    )
    return obj


@transaction.atomic
def model_save(*, actor, model: Model | None = None, **fields) -> Model:
    obj = model or Model()
    before = audit_snapshot(obj) if obj.pk else None
    _apply(obj, fields, MODEL_FIELDS)
    _save_audited(obj, actor=actor, action="model.update" if before else "model.create", before=before)
    return obj


@transaction.atomic
def channel_save(
    *,
    actor,
    channel: Channel | None = None,
    api_key: str | None = None,
    token_groups: Iterable[TokenGroup] | None = None,
    models: Mapping[Model, str] | Iterable[Model] | None = None,
    **fields,
) -> Channel:
    """Create or change a channel. `api_key` is write-only: None keeps the stored key.

    `models` maps each served model to its upstream name ('' = same name), or lists models.
    """
    obj = channel or Channel()
    before = audit_snapshot(obj) if obj.pk else None
    _apply(obj, fields, CHANNEL_FIELDS)
    if api_key is not None:
        obj.api_key = api_key
    if not obj.pk and not obj.api_key_encrypted:
        raise ValidationError({"api_key": "A new channel needs its upstream key."})
    channel_base_url_check(base_url=obj.base_url, allow_private=obj.allow_private_network)
    obj.full_clean()
    obj.save()
    if token_groups is not None:
        obj.token_groups.set(list(token_groups))
    if models is not None:
        mapping = dict(models) if isinstance(models, Mapping) else {m: "" for m in models}
        ChannelModel.objects.filter(channel=obj).exclude(model__in=list(mapping)).delete()
        for model, upstream_name in mapping.items():
            ChannelModel.objects.update_or_create(
                channel=obj, model=model, defaults={"upstream_name": upstream_name or ""}
            )
    after = audit_snapshot(obj)
    if api_key is not None:
        after["api_key"] = "(changed)"
    audit_record(
        actor=actor,
        action="channel.update" if before else "channel.create",
        obj=obj,
        before=before,
        after=after,
    )
    return obj


@transaction.atomic
def channel_set_enabled(*, actor, channel: Channel, enabled: bool, reason: str = "") -> Channel:
    """Operator switch; enabling also clears an automatic disable."""
    before = audit_snapshot(channel)
    channel.enabled = enabled
    if enabled:
        channel.auto_disabled = False
        channel.auto_disabled_reason = ""
    channel.save(update_fields=["enabled", "auto_disabled", "auto_disabled_reason", "updated_at"])
    if enabled:
        verdict_clear_auth_error(channel.id)  # back in rotation now, not after the next probe
    audit_record(
        actor=actor,
        action="channel.enable" if enabled else "channel.disable",
        obj=channel,
        before=before,
        after={**audit_snapshot(channel), "reason": reason},
    )
    return channel


def user_apply_upgrade_rules(*, user: User, total_recharged_micro: int) -> bool:
    """Move the user up to the highest user group whose threshold they reached.

    Never downgrades, and leaves pinned users alone. Returns whether it changed.
    """
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
    before = user.user_group.name if user.user_group is not None else None
    user.user_group = rule.user_group
    user.save(update_fields=["user_group"])
    user_access_changed.send(sender=User, user_id=user.pk)
    audit_record(
        actor=None,
        action="user_group.upgrade",
        obj=user,
        before={"user_group": before},
        after={"user_group": rule.user_group.name},
    )
    return True
