"""Token writes: create, update, roll key, fallback ordering. Validation lives here.

Every write that changes what the relay caches for a key drops that entry on commit
(`tokens.keys.forget_cached_tokens`); there is no signal behind these services."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.services import audit_record
from core.keys import display_prefix, generate_key, hash_key
from groups.models import Model, TokenGroup
from groups.selectors import fallback_token_groups, selectable_token_groups

from .keys import forget_cached_tokens
from .models import BillingMode, Token, TokenFallback

MAX_QUOTA_MICRO = 10_000_000 * 1_000_000


def normalize_ip_allowlist(entries: Iterable[str]) -> list[str]:
    """Parse IPs and CIDRs; a malformed entry is refused with its text in the message."""
    out = []
    for raw in entries:
        text = str(raw).strip()
        if not text:
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError:
            raise ValidationError(
                {"ip_allowlist": _("%(entry)r is not an IP address or CIDR range") % {"entry": text}}
            ) from None
    return out


def token_validate(
    *,
    user,
    select_group: TokenGroup,
    fallback_groups: Sequence[TokenGroup],
    billing_mode: str,
    quota_micro: int | None,
    expires_at: datetime | None,
    model_allowlist: Sequence[str],
    check_expiry: bool = True,
) -> None:
    errors: dict[str, list[str]] = {}
    user_group = user.user_group
    if not selectable_token_groups(user_group=user_group, user=user).filter(pk=select_group.pk).exists():
        errors.setdefault("select_group", []).append(
            _("Your user group (%(user_group)s) may not select the %(group)s group.")
            % {"user_group": user_group or _("none"), "group": select_group.name}
        )
    cap = settings.TOKEN_MAX_FALLBACK_GROUPS
    if len(fallback_groups) > cap:
        errors.setdefault("fallback_groups", []).append(
            ngettext(
                "At most %(cap)d fallback group: the guide recommends 1–2 that offer the same models.",
                "At most %(cap)d fallback groups: the guide recommends 1–2 that offer the same models.",
                cap,
            )
            % {"cap": cap}
        )
    seen: set[int] = set()
    allowed = set(fallback_token_groups(user_group=user_group, user=user).values_list("pk", flat=True))
    for group in fallback_groups:
        if group.pk == select_group.pk:
            errors.setdefault("fallback_groups", []).append(
                _("%(group)s is the select group; a fallback group must be a different group.")
                % {"group": group.name}
            )
        elif group.pk in seen:
            errors.setdefault("fallback_groups", []).append(
                _("%(group)s is listed twice.") % {"group": group.name}
            )
        elif group.pk not in allowed:
            errors.setdefault("fallback_groups", []).append(
                _("Your user group (%(user_group)s) may not use the %(group)s group.")
                % {"user_group": user_group or _("none"), "group": group.name}
            )
        seen.add(group.pk)
    if billing_mode not in BillingMode.values:
        errors.setdefault("billing_mode", []).append(
            _("Unknown billing mode %(mode)r; choose one of %(modes)s.")
            % {"mode": billing_mode, "modes": ", ".join(BillingMode.values)}
        )
    if quota_micro is not None and not (0 <= quota_micro <= MAX_QUOTA_MICRO):
        errors.setdefault("quota_micro", []).append(_("Quota must be between ¥0 and ¥10,000,000."))
    if check_expiry and expires_at is not None and expires_at <= timezone.now():
        errors.setdefault("expires_at", []).append(_("Expiry must be in the future."))
    unknown = sorted(
        set(model_allowlist)
        - set(Model.objects.filter(name__in=model_allowlist).values_list("name", flat=True))
    )
    if unknown:
        errors.setdefault("model_allowlist", []).append(
            _("Unknown models: %(models)s.") % {"models": ", ".join(unknown)}
        )
    if errors:
        raise ValidationError(errors)


def _audit_view(token: Token) -> dict:
    """What the audit log shows of a token: its settings by name, never its key."""
    return {
        "name": token.name,
        "select_group": token.select_group.name,
        "fallback_groups": [
            f.group.name for f in token.fallbacks.select_related("group").order_by("position")
        ],
        "billing_mode": token.billing_mode,
        "quota_micro": token.quota_micro,
        "enabled": token.enabled,
    }


def _set_fallbacks(token: Token, groups: Sequence[TokenGroup]) -> None:
    TokenFallback.objects.filter(token=token).delete()
    TokenFallback.objects.bulk_create(
        TokenFallback(token=token, group=group, position=i) for i, group in enumerate(groups)
    )
    forget_cached_tokens(token.key_hash)


@transaction.atomic
def token_create(
    *,
    user,
    name: str,
    select_group: TokenGroup,
    fallback_groups: Sequence[TokenGroup] = (),
    billing_mode: str = BillingMode.USAGE_FIRST,
    quota_micro: int | None = None,
    expires_at: datetime | None = None,
    model_allowlist: Sequence[str] = (),
    ip_allowlist: Iterable[str] = (),
    rpm_limit: int | None = None,
    actor=None,
    ip: str | None = None,
) -> tuple[Token, str]:
    """Create a token; returns it with its raw key, which is never stored or shown again.

    `actor` (default: the owner) and `ip` are who did it, for the audit log."""
    name = (name or "").strip() or "default"
    fallback_groups = list(fallback_groups)
    ips = normalize_ip_allowlist(ip_allowlist)
    token_validate(
        user=user,
        select_group=select_group,
        fallback_groups=fallback_groups,
        billing_mode=billing_mode,
        quota_micro=quota_micro,
        expires_at=expires_at,
        model_allowlist=model_allowlist,
    )
    raw = generate_key()
    token = Token(
        user=user,
        name=name[:100],
        key_prefix=display_prefix(raw),
        key_hash=hash_key(raw),
        select_group=select_group,
        billing_mode=billing_mode,
        quota_micro=quota_micro,
        expires_at=expires_at,
        model_allowlist=sorted(set(model_allowlist)),
        ip_allowlist=ips,
        rpm_limit=rpm_limit,
    )
    token.save()
    _set_fallbacks(token, fallback_groups)
    audit_record(actor=actor or user, action="token.create", obj=token, after=_audit_view(token), ip=ip)
    return token, raw


_UNSET = object()


@transaction.atomic
def token_update(
    *,
    token: Token,
    name=_UNSET,
    select_group=_UNSET,
    fallback_groups=_UNSET,
    billing_mode=_UNSET,
    quota_micro=_UNSET,
    expires_at=_UNSET,
    model_allowlist=_UNSET,
    ip_allowlist=_UNSET,
    enabled=_UNSET,
    rpm_limit=_UNSET,
    actor=None,
    ip: str | None = None,
) -> Token:
    """Change any of a token's settings; what is not passed stays as it is."""
    token = Token.objects.select_for_update(of=("self",)).select_related("user__user_group").get(pk=token.pk)
    current_fallbacks = [f.group for f in token.fallbacks.select_related("group")]
    before = _audit_view(token)
    new_select = token.select_group if select_group is _UNSET else select_group
    new_fallbacks = current_fallbacks if fallback_groups is _UNSET else list(fallback_groups)
    new_expiry = token.expires_at if expires_at is _UNSET else expires_at
    token_validate(
        user=token.user,
        select_group=new_select,
        fallback_groups=new_fallbacks,
        billing_mode=token.billing_mode if billing_mode is _UNSET else billing_mode,
        quota_micro=token.quota_micro if quota_micro is _UNSET else quota_micro,
        expires_at=new_expiry,
        model_allowlist=token.model_allowlist if model_allowlist is _UNSET else model_allowlist,
        check_expiry=expires_at is not _UNSET,
    )
    if name is not _UNSET:
        token.name = (name or "").strip()[:100] or token.name
    token.select_group = new_select
    token.expires_at = new_expiry
    if billing_mode is not _UNSET:
        token.billing_mode = billing_mode
    if quota_micro is not _UNSET:
        token.quota_micro = quota_micro
    if model_allowlist is not _UNSET:
        token.model_allowlist = sorted(set(model_allowlist))
    if ip_allowlist is not _UNSET:
        token.ip_allowlist = normalize_ip_allowlist(ip_allowlist)
    if enabled is not _UNSET:
        token.enabled = bool(enabled)
    if rpm_limit is not _UNSET:
        token.rpm_limit = rpm_limit
    token.save()
    if fallback_groups is not _UNSET:
        _set_fallbacks(token, new_fallbacks)
    after = _audit_view(token)
    if after != before:
        audit_record(
            actor=actor or token.user, action="token.update", obj=token, before=before, after=after, ip=ip
        )
    forget_cached_tokens(token.key_hash)
    return token


@transaction.atomic
def token_roll_key(*, token: Token) -> str:
    """Replace the key; the old one stops working at once."""
    old_hash = token.key_hash
    raw = generate_key()
    token.key_hash = hash_key(raw)
    token.key_prefix = display_prefix(raw)
    token.save(update_fields=["key_hash", "key_prefix", "updated_at"])
    forget_cached_tokens(old_hash)
    audit_record(actor=token.user, action="token.roll", obj=token, after={"key_prefix": token.key_prefix})
    return raw


@transaction.atomic
def token_delete(*, token: Token, actor=None, ip: str | None = None) -> None:
    key_hash = token.key_hash
    audit_record(
        actor=actor or token.user, action="token.delete", obj=token, before=_audit_view(token), ip=ip
    )
    token.delete()
    forget_cached_tokens(key_hash)
