"""Operator and customer wallet writes: recharge, adjustment, refund, bonus tiers, settings.

Every balance change is a ledger line in the same transaction; these writes lock the wallet
row. Holds and settlements of relay calls live in billing/ledger.py, the hold sweeper in
billing/sweeper.py.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import F

from accounts.services import audit_record, audit_snapshot
from core.pricing import to_micro
from groups.services import user_apply_upgrade_rules

from .ledger import BillingError, InsufficientBalance, InvalidAmount
from .ledger import check_amount as _check_amount
from .models import (
    LedgerEntry,
    LedgerKind,
    Recharge,
    RechargeBonusTier,
    Setting,
    UsageRecord,
    Wallet,
)


class PaymentRefConflict(BillingError):
    """A payment reference already credited to another user or amount."""

    code = "payment_ref_conflict"


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
    """Credit a paid amount and, as its own ledger line, the bonus of its tier.

    Idempotent per payment reference: replaying a reference already credited to this user for
    this amount returns that recharge and credits nothing (Back + Pay, double clicks, retries).
    """
    _check_amount(amount_micro)
    wallet_get_or_create(user=user)
    wallet = _locked_wallet(user_id=user.pk)
    existing = Recharge.objects.filter(payment_ref=payment_ref).first()
    if existing is not None:
        if existing.user_id != user.pk or existing.amount_micro != amount_micro:
            raise PaymentRefConflict("this payment reference belongs to another recharge")
        return existing
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
    audit_record(
        actor=actor or user,
        action="wallet.recharge",
        obj=user,
        after={
            "amount_micro": amount_micro,
            "bonus_micro": bonus,
            "bonus_percent": str(percent.normalize()),
            "balance_micro": wallet.balance_micro,
            "payment_ref": payment_ref,
        },
    )
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
        after={"amount_micro": amount_micro, "balance_micro": wallet.balance_micro, "reason": reason[:255]},
    )
    return entry


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
