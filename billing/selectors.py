"""Reads for billing: settings, balances, reconciliation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Q, Sum

from .models import LedgerKind, RechargeBonusTier, Setting, Wallet

DEFAULT_USD_CNY_RATE = Decimal("7.2")
USD_CNY_RATE_KEY = "usd_cny_rate"


def usd_cny_rate() -> Decimal:
    row = Setting.objects.filter(key=USD_CNY_RATE_KEY).values_list("value", flat=True).first()
    return Decimal(row) if row else DEFAULT_USD_CNY_RATE


def best_bonus_percent() -> Decimal:
    """The highest recharge bonus on offer, for "after your bonus" price explanations."""
    cached = cache.get("billing:best_bonus")
    if cached is None:
        tier = RechargeBonusTier.objects.order_by("-bonus_percent").first()
        cached = str(tier.bonus_percent) if tier else "0"
        cache.set("billing:best_bonus", cached, 60)
    return Decimal(cached)


@dataclass(frozen=True)
class WalletMismatch:
    wallet_id: int
    username: str
    field: str
    stored_micro: int
    ledger_micro: int


def wallets_out_of_balance() -> list[WalletMismatch]:
    """Wallets whose balance (or held amount) differs from what their ledger says."""
    rows = Wallet.objects.select_related("user").annotate(
        ledger_sum=Sum("entries__amount_micro", default=0),
        holds=Sum("entries__amount_micro", filter=Q(entries__kind=LedgerKind.HOLD), default=0),
        releases=Sum("entries__amount_micro", filter=Q(entries__kind=LedgerKind.RELEASE), default=0),
    )
    out = []
    for w in rows:
        if w.balance_micro != w.ledger_sum:
            out.append(WalletMismatch(w.pk, w.user.username, "balance", w.balance_micro, w.ledger_sum))
        outstanding = -(w.holds + w.releases)
        if w.held_micro != outstanding:
            out.append(WalletMismatch(w.pk, w.user.username, "held", w.held_micro, outstanding))
    return out
