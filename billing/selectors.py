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


# ---- console reads: dashboard, usage, failure explanations ---------------------------------


def spend_by_day(*, user, days: int = 7) -> list[tuple]:
    """(date, micro-yuan charged) for each of the last `days` days, oldest first, gaps as 0."""
    from datetime import timedelta

    from django.db.models.functions import TruncDate
    from django.utils import timezone

    from .models import UsageRecord

    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        UsageRecord.objects.filter(user=user, created_at__date__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(total=Sum("cost_micro"))
    )
    totals = {row["day"]: row["total"] or 0 for row in rows}
    return [(start + timedelta(days=i), totals.get(start + timedelta(days=i), 0)) for i in range(days)]


def usage_by_group(*, user, days: int = 7) -> list[dict]:
    """Calls, errors, error rate and spend per group used, over the last `days` days."""
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from .models import UsageRecord, UsageStatus

    since = timezone.now() - timedelta(days=days)
    rows = (
        UsageRecord.objects.filter(user=user, created_at__gte=since)
        .values("group_name")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status=UsageStatus.ERROR)),
            cost=Sum("cost_micro"),
        )
        .order_by("-calls")
    )
    return [
        {
            "group": row["group_name"] or "(none: refused before routing)",
            "calls": row["calls"],
            "errors": row["errors"],
            "error_rate": Decimal(row["errors"]) / row["calls"] if row["calls"] else Decimal(0),
            "cost_micro": row["cost"] or 0,
        }
        for row in rows
    ]


def recent_failures(*, user, limit: int = 5):
    from .models import UsageRecord, UsageStatus

    return UsageRecord.objects.filter(user=user, status=UsageStatus.ERROR).order_by("-created_at")[:limit]


def usage_for_user(*, user):
    from .models import UsageRecord

    return UsageRecord.objects.filter(user=user).select_related("token")


def ledger_for_user(*, user):
    from .models import LedgerEntry

    return LedgerEntry.objects.filter(wallet__user=user)


def balance_summary(*, user) -> dict:
    """Balance in RMB with its USD equivalent at the operator's rate."""
    wallet = Wallet.objects.filter(user=user).first()
    balance = wallet.balance_micro if wallet else 0
    rate = usd_cny_rate()
    return {
        "balance_micro": balance,
        "held_micro": wallet.held_micro if wallet else 0,
        "total_recharged_micro": wallet.total_recharged_micro if wallet else 0,
        "usd_equivalent": (Decimal(balance) / 1_000_000 / rate).quantize(Decimal("0.01")),
        "usd_cny_rate": rate,
    }


def _advice(level: str, text: str) -> dict:
    return {"level": level, "text": text}


def usage_failure_advice(*, record) -> list[dict]:
    """What the user should change, in the guide's words, for one usage record."""
    from groups.models import Model
    from groups.selectors import fallback_token_groups, groups_offering

    user = record.user
    token = record.token
    user_group = user.user_group
    status = record.http_status
    code = (record.error_code or "").lower()
    message = (record.error_message or "").lower()
    token_groups = []
    if token is not None:
        token_groups = [token.select_group, *[f.group for f in token.fallbacks.select_related("group")]]
    names = ", ".join(g.name for g in token_groups) or "your token's groups"
    out = []
    if record.status != "error" and status < 400:
        if record.fallback_used:
            out.append(
                _advice(
                    "ok",
                    f"This call succeeded through the fallback group {record.group_name}: "
                    "the groups before it in the trace could not serve it.",
                )
            )
        else:
            out.append(_advice("ok", f"This call succeeded in the {record.group_name or 'select'} group."))
        return out
    if status == 404 or "model_not_found" in code:
        usable = fallback_token_groups(user_group=user_group)
        offering = groups_offering(model_name=record.model_name, among=usable)
        missing = [g for g in offering if g not in token_groups]
        if missing:
            first = missing[0].name
            others = ", ".join(g.name for g in missing)
            out.append(
                _advice(
                    "bad",
                    f"Model {record.model_name} is not in {names}; offered by {others} — add {first} as a "
                    f"fallback group on the token, or choose {first} as its select group.",
                )
            )
        elif not Model.objects.filter(name=record.model_name).exists():
            out.append(
                _advice(
                    "bad",
                    f"There is no model called {record.model_name!r}. Check the spelling "
                    "on the Prices & groups page.",
                )
            )
        else:
            out.append(
                _advice(
                    "bad",
                    f"No group your user group ({user_group or 'none'}) may use offers "
                    f"{record.model_name} right now.",
                )
            )
    elif "rate_limit" in code:
        out.append(
            _advice(
                "warn",
                "This token or account has a requests-per-minute limit "
                "set by an operator; "
                "slow down, or ask for a higher limit.",
            )
        )
    elif status == 429 or "saturated" in code or "saturated" in message:
        out.append(
            _advice(
                "warn",
                "“Current group's upstream is saturated” is not a limit on your account: "
                "the upstream channel for this model in this group is busy.",
            )
        )
        out.append(
            _advice(
                "info",
                "Loosen client timeouts (60–120 s) and retry with exponential backoff "
                "instead of immediate concurrent retries.",
            )
        )
        alternatives = [
            g
            for g in groups_offering(
                model_name=record.model_name, among=fallback_token_groups(user_group=user_group)
            )
            if g not in token_groups
        ]
        if alternatives:
            out.append(
                _advice(
                    "info",
                    f"Attach 1–2 fallback groups that offer {record.model_name}: "
                    f"{', '.join(g.name for g in alternatives[:2])}.",
                )
            )
        out.append(
            _advice(
                "info",
                "Preview models (names like *-preview-*) have fluctuating capacity; for "
                "steady high concurrency evaluate a more stable sibling model.",
            )
        )
    elif status == 403 or "permission" in code:
        model = Model.objects.filter(name=record.model_name).first()
        tiers = user_group.model_tiers if user_group else []
        if model is not None and model.tier not in tiers:
            allowed = ", ".join(tiers) or "no"
            out.append(
                _advice(
                    "bad",
                    f"{model.name} is a {model.tier} model; your user group "
                    f"({user_group or 'none'}) may call {allowed} models.",
                )
            )
        elif token is not None and token.model_allowlist and record.model_name not in token.model_allowlist:
            out.append(
                _advice(
                    "bad",
                    f"{record.model_name} is not in the token's model allowlist — add it, "
                    "or empty the allowlist to allow every model.",
                )
            )
        elif token is not None and model is not None:
            out.append(
                _advice(
                    "bad",
                    f"The token's billing mode ({token.get_billing_mode_display()}) has no "
                    f"price for {model.name}; switch it to “usage first” or “call first”.",
                )
            )
        else:
            out.append(_advice("bad", "This call was not permitted for this token."))
    elif status == 402 or "quota" in code:
        if "token" in code or "token" in message:
            out.append(_advice("bad", "The token's quota is used up — raise or clear its quota."))
        else:
            out.append(_advice("bad", "Your balance does not cover this call — recharge your wallet."))
    elif status == 401:
        out.append(_advice("bad", "The key was missing, wrong, disabled or expired — check the token."))
    elif status in (400, 413):
        out.append(
            _advice(
                "bad", "The request itself was malformed or too large; the message below says which field."
            )
        )
    elif status >= 500:
        others = [
            g.name
            for g in groups_offering(
                model_name=record.model_name, among=fallback_token_groups(user_group=user_group)
            )
            if g not in token_groups
        ]
        extra = (
            f" Adding {others[0]} as a fallback group would add more channels for {record.model_name}."
            if others
            else ""
        )
        out.append(
            _advice(
                "warn",
                "Every upstream channel tried for this call failed; you were not charged. "
                f"Retry with backoff.{extra}",
            )
        )
    if record.error_message:
        out.append(_advice("info", f"Gateway message: {record.error_message}"))
    return out
