"""Wallet writes. Every balance change is a ledger line in the same transaction.

Concurrency: the wallet row is locked (SELECT … FOR UPDATE on PostgreSQL; SQLite runs
write transactions one at a time) before any check, so checks and writes cannot
interleave; unique (request_id, kind) ledger lines make settlement happen once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.services import audit_record, audit_snapshot, user_apply_upgrade_rules
from tokens.models import Token

from .models import (
    LedgerEntry,
    LedgerKind,
    Recharge,
    RechargeBonusTier,
    Setting,
    UsageRecord,
    UsageStatus,
    Wallet,
)
from .pricing import to_micro

logger = logging.getLogger(__name__)

# Upper bound for any single money amount: ¥10,000,000.
MAX_AMOUNT_MICRO = 10_000_000 * 1_000_000


class BillingError(Exception):
    code = "billing_error"


class InsufficientBalance(BillingError):
    code = "insufficient_balance"


class QuotaExceeded(BillingError):
    code = "token_quota_exceeded"


class InvalidAmount(BillingError, ValueError):
    code = "invalid_amount"


def _check_amount(amount_micro: int, *, allow_zero: bool = False, allow_negative: bool = False):
    if not isinstance(amount_micro, int) or isinstance(amount_micro, bool):
        raise InvalidAmount("amount must be a whole number of micro-yuan")
    if abs(amount_micro) > MAX_AMOUNT_MICRO:
        raise InvalidAmount("amount is larger than ¥10,000,000")
    if amount_micro < 0 and not allow_negative:
        raise InvalidAmount("amount must not be negative")
    if amount_micro == 0 and not allow_zero:
        raise InvalidAmount("amount must not be zero")


def wallet_get_or_create(*, user) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user=user)
    return wallet


def _locked_wallet(**lookup) -> Wallet:
    return Wallet.objects.select_for_update().get(**lookup)


def _post(wallet: Wallet, kind: str, amount_micro: int, **extra) -> LedgerEntry:
    return LedgerEntry.objects.create(
        wallet=wallet, kind=kind, amount_micro=amount_micro, balance_after_micro=wallet.balance_micro, **extra
    )


@transaction.atomic
def wallet_hold(*, user_id: int, request_id: str, amount_micro: int, token_id: int | None = None) -> int:
    """Reserve an estimate before an upstream call. Never overdraws, never exceeds a quota."""
    _check_amount(amount_micro, allow_zero=True)
    try:
        wallet = _locked_wallet(user_id=user_id)
    except Wallet.DoesNotExist:
        raise InsufficientBalance("no wallet") from None
    if wallet.balance_micro < amount_micro or wallet.balance_micro <= 0:
        raise InsufficientBalance("insufficient balance")
    if token_id is not None:
        updated = (
            Token.objects.filter(pk=token_id)
            .filter(
                Q(quota_micro__isnull=True)
                | Q(quota_micro__gte=F("spent_micro") + F("held_micro") + amount_micro)
            )
            .update(held_micro=F("held_micro") + amount_micro)
        )
        if not updated:
            raise QuotaExceeded("token quota exceeded")
    wallet.balance_micro -= amount_micro
    wallet.held_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "held_micro", "updated_at"])
    _post(wallet, LedgerKind.HOLD, -amount_micro, request_id=request_id, token_id=token_id)
    return amount_micro


@dataclass(frozen=True)
class Settlement:
    record: UsageRecord
    charged_micro: int
    already_settled: bool


@transaction.atomic
def usage_settle(*, request_id: str, user_id: int, cost_micro: int, record: dict) -> Settlement:
    """Charge the actual cost, release the rest of the hold, write the usage record: once.

    A second call for the same request id changes nothing and returns the first result.
    A cost above what the hold and balance cover is recorded as uncollected, never overdrawn.
    """
    _check_amount(cost_micro, allow_zero=True)
    wallet = _locked_wallet(user_id=user_id)
    existing = UsageRecord.objects.filter(request_id=request_id, settled_at__isnull=False).first()
    if existing is not None:
        return Settlement(existing, existing.cost_micro - existing.uncollected_micro, True)
    hold = LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.HOLD).first()
    hold_micro = -hold.amount_micro if hold is not None else 0
    available = wallet.balance_micro + hold_micro
    charged = min(cost_micro, available)
    if hold is not None:
        wallet.balance_micro += hold_micro
        wallet.held_micro -= hold_micro
        _post(wallet, LedgerKind.RELEASE, hold_micro, request_id=request_id)
    if charged:
        wallet.balance_micro -= charged
        _post(wallet, LedgerKind.CHARGE, -charged, request_id=request_id)
    wallet.save(update_fields=["balance_micro", "held_micro", "updated_at"])
    token_id = record.get("token_id")
    if token_id is not None and (hold_micro or charged):
        Token.objects.filter(pk=token_id).update(
            held_micro=F("held_micro") - hold_micro, spent_micro=F("spent_micro") + charged
        )
    fields = {
        **record,
        "user_id": user_id,
        "hold_micro": hold_micro,
        "cost_micro": cost_micro,
        "uncollected_micro": cost_micro - charged,
        "settled_at": timezone.now(),
    }
    usage, _ = UsageRecord.objects.update_or_create(request_id=request_id, defaults=fields)
    return Settlement(usage, charged, False)


@transaction.atomic
def wallet_refund(*, request_id: str, amount_micro: int, memo: str = "", actor=None) -> LedgerEntry:
    """Give back (part of) a settled charge; at most once per request id."""
    _check_amount(amount_micro)
    charge = LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.CHARGE).first()
    if charge is None:
        raise InvalidAmount("no charge to refund for this request")
    if amount_micro > -charge.amount_micro:
        raise InvalidAmount("refund is larger than the charge")
    wallet = _locked_wallet(pk=charge.wallet_id)
    if LedgerEntry.objects.filter(request_id=request_id, kind=LedgerKind.REFUND).exists():
        raise InvalidAmount("this request was already refunded")
    wallet.balance_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "updated_at"])
    entry = _post(wallet, LedgerKind.REFUND, amount_micro, request_id=request_id, memo=memo, created_by=actor)
    UsageRecord.objects.filter(request_id=request_id).update(cost_micro=F("cost_micro") - amount_micro)
    return entry


def bonus_tier_for(amount_micro: int) -> RechargeBonusTier | None:
    return (
        RechargeBonusTier.objects.filter(min_amount_micro__lte=amount_micro)
        .order_by("-min_amount_micro")
        .first()
    )


@transaction.atomic
def wallet_recharge(*, user, amount_micro: int, payment_ref: str, actor=None) -> Recharge:
    """Credit a paid amount and, as its own ledger line, the bonus of its tier."""
    _check_amount(amount_micro)
    wallet_get_or_create(user=user)
    wallet = _locked_wallet(user_id=user.pk)
    tier = bonus_tier_for(amount_micro)
    percent = tier.bonus_percent if tier else Decimal(0)
    bonus = to_micro(Decimal(amount_micro) * percent / 100 / 1_000_000)
    recharge = Recharge.objects.create(
        user=user,
        amount_micro=amount_micro,
        bonus_micro=bonus,
        bonus_percent=percent,
        payment_ref=payment_ref,
    )
    wallet.balance_micro += amount_micro
    _post(wallet, LedgerKind.RECHARGE, amount_micro, memo=f"recharge {payment_ref}", created_by=actor)
    if bonus:
        wallet.balance_micro += bonus
        _post(wallet, LedgerKind.BONUS, bonus, memo=f"+{percent.normalize():f}% bonus", created_by=actor)
    wallet.total_recharged_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "total_recharged_micro", "updated_at"])
    user_apply_upgrade_rules(user=user, total_recharged_micro=wallet.total_recharged_micro)
    return recharge


@transaction.atomic
def wallet_adjust(*, user, amount_micro: int, reason: str, actor) -> LedgerEntry:
    """Operator credit (+) or debit (−) with a reason; never below zero."""
    _check_amount(amount_micro, allow_negative=True)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidAmount("an adjustment needs a reason")
    wallet_get_or_create(user=user)
    wallet = _locked_wallet(user_id=user.pk)
    before = wallet.balance_micro
    if before + amount_micro < 0:
        raise InsufficientBalance("the adjustment would make the balance negative")
    wallet.balance_micro += amount_micro
    wallet.save(update_fields=["balance_micro", "updated_at"])
    entry = _post(wallet, LedgerKind.ADJUSTMENT, amount_micro, memo=reason[:255], created_by=actor)
    audit_record(
        actor=actor,
        action="wallet.adjust",
        obj=user,
        before={"balance_micro": before},
        after={"balance_micro": wallet.balance_micro, "reason": reason[:255]},
    )
    return entry


def usage_record_failure(*, request_id: str, user_id: int, record: dict) -> UsageRecord:
    """A call refused before any hold (auth passed): kept so the user can see why it failed."""
    fields = {**record, "user_id": user_id, "status": UsageStatus.ERROR, "settled_at": timezone.now()}
    usage, _ = UsageRecord.objects.update_or_create(request_id=request_id, defaults=fields)
    return usage


@transaction.atomic
def bonus_tier_save(
    *, actor, tier: RechargeBonusTier | None = None, min_amount_micro: int | None = None, bonus_percent=None
) -> RechargeBonusTier:
    """Create or change a recharge bonus tier, audited."""
    obj = tier or RechargeBonusTier()
    before = audit_snapshot(obj) if obj.pk else None
    if min_amount_micro is not None:
        _check_amount(min_amount_micro)
        obj.min_amount_micro = min_amount_micro
    if bonus_percent is not None:
        obj.bonus_percent = bonus_percent
    obj.full_clean()
    obj.save()
    cache.delete("billing:best_bonus")
    audit_record(
        actor=actor,
        action="bonus_tier.update" if before else "bonus_tier.create",
        obj=obj,
        before=before,
        after=audit_snapshot(obj),
    )
    return obj


@transaction.atomic
def bonus_tier_delete(*, actor, tier: RechargeBonusTier) -> None:
    audit_record(actor=actor, action="bonus_tier.delete", obj=tier, before=audit_snapshot(tier))
    tier.delete()
    cache.delete("billing:best_bonus")


@transaction.atomic
def setting_set(*, actor, key: str, value: str) -> Setting:
    """Change an operator setting (validated by Setting.clean, e.g. usd_cny_rate), audited."""
    setting = Setting.objects.select_for_update().filter(key=key).first() or Setting(key=key)
    before = {"value": setting.value} if setting.pk else None
    setting.value = str(value).strip()
    setting.full_clean()
    setting.save()
    audit_record(
        actor=actor, action="setting.update", obj=setting, before=before, after={"value": setting.value}
    )
    return setting


ABANDONED = "abandoned"


def holds_release_stale(
    *, older_than_s: int, video_older_than_s: int | None = None, limit: int = 1000
) -> int:
    """Release holds that nothing released after `older_than_s`: the process that took them died.

    Each hold gets its own transaction under the wallet row lock and is re-checked after
    the lock, so concurrent sweepers (or a late settlement) release it exactly once; the
    unique (request_id, kind) ledger constraint backs that up. The usage record says
    status error / "abandoned" at zero cost, and a settlement arriving later changes
    nothing. Holds of video jobs, which the worker settles when the job ends, wait
    `video_older_than_s` instead. Returns how many holds were released.
    """
    from groups.models import Model, ModelKind

    now = timezone.now()
    released = LedgerEntry.objects.filter(kind=LedgerKind.RELEASE, request_id=OuterRef("request_id"))
    candidates = list(
        LedgerEntry.objects.filter(
            kind=LedgerKind.HOLD,
            request_id__isnull=False,
            created_at__lt=now - timedelta(seconds=older_than_s),
        )
        .exclude(Exists(released))
        .order_by("id")
        .values_list("pk", "request_id", "created_at")[:limit]
    )
    video_cutoff = now - timedelta(seconds=max(video_older_than_s or 0, older_than_s))
    video_requests = set(
        UsageRecord.objects.filter(request_id__in=[c[1] for c in candidates])
        .filter(
            Q(endpoint__startswith="/v1/videos")
            | Q(model_name__in=Model.objects.filter(kind=ModelKind.VIDEO).values("name"))
        )
        .values_list("request_id", flat=True)
    )
    count = 0
    for hold_id, request_id, created_at in candidates:
        if request_id in video_requests and created_at >= video_cutoff:
            continue
        count += _hold_release_abandoned(hold_id=hold_id)
    return count


@transaction.atomic
def _hold_release_abandoned(*, hold_id: int) -> bool:
    hold = LedgerEntry.objects.get(pk=hold_id)
    wallet = _locked_wallet(pk=hold.wallet_id)
    if LedgerEntry.objects.filter(request_id=hold.request_id, kind=LedgerKind.RELEASE).exists():
        return False
    amount = -hold.amount_micro
    wallet.balance_micro += amount
    wallet.held_micro -= amount
    try:
        with transaction.atomic():
            _post(wallet, LedgerKind.RELEASE, amount, request_id=hold.request_id, memo=ABANDONED)
    except IntegrityError:
        return False
    wallet.save(update_fields=["balance_micro", "held_micro", "updated_at"])
    if hold.token_id is not None and amount:
        Token.objects.filter(pk=hold.token_id).update(held_micro=Greatest(F("held_micro") - amount, 0))
    now = timezone.now()
    outcome = {
        "status": UsageStatus.ERROR,
        "error_code": ABANDONED,
        "error_message": "The call was abandoned (the gateway process stopped); its hold was released.",
        "hold_micro": amount,
        "cost_micro": 0,
        "uncollected_micro": 0,
        "settled_at": now,
    }
    UsageRecord.objects.update_or_create(
        request_id=hold.request_id,
        defaults=outcome,
        create_defaults={**outcome, "user_id": wallet.user_id, "token_id": hold.token_id},
    )
    logger.warning("released abandoned hold %s of %s micro-yuan", hold.request_id, amount)
    return True
