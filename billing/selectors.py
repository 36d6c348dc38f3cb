"""Reads for billing: settings, balances, reconciliation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from core.pricing import ratio_to_official, unit_price_cny
from groups import policy
from groups.models import Model
from groups.policy import Caller, Refusal, plan
from groups.quotes import UNITS
from groups.routing import get_snapshot
from groups.selectors import offering_token_groups

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


def user_bonus_percent(*, user) -> Decimal:
    """The best bonus the customer's own recharges earned (0 without any): their real tier."""
    from django.db.models import Max

    return Recharge.objects.filter(user=user).aggregate(best=Max("bonus_percent"))["best"] or Decimal(0)


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
    """Calls, errors, error rate and spend per group used, over the last `days` days.

    A call refused because every channel was saturated has no serving group; it counts as an
    error of each group its routing trace tried, not as "refused before routing".
    """
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    none = _("(none: refused before routing)")
    since = timezone.now() - timedelta(days=days)
    mine = UsageRecord.objects.filter(user=user, created_at__gte=since)
    rows = (
        mine.exclude(group_name="")
        .values("group_name")
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status=UsageStatus.ERROR)),
            cost=Sum("cost_micro"),
        )
    )
    groups = {
        r["group_name"]: {"calls": r["calls"], "errors": r["errors"], "cost": r["cost"] or 0} for r in rows
    }
    for status, cost, trace in mine.filter(group_name="").values_list("status", "cost_micro", "trace"):
        tried = list(dict.fromkeys(a["group"] for a in trace or [] if isinstance(a, dict) and a.get("group")))
        for name in tried or [none]:
            row = groups.setdefault(name, {"calls": 0, "errors": 0, "cost": 0})
            row["calls"] += 1
            row["errors"] += status == UsageStatus.ERROR
            row["cost"] += cost or 0
    ordered = sorted(groups.items(), key=lambda item: (-item[1]["calls"], item[0]))
    return [
        {
            "group": name,
            "calls": row["calls"],
            "errors": row["errors"],
            "error_rate": Decimal(row["errors"]) / row["calls"] if row["calls"] else Decimal(0),
            "cost_micro": row["cost"],
        }
        for name, row in ordered
    ]


def spend_report(*, user, start, end) -> dict:
    """Spend between two local dates (inclusive): per day, per model and per token."""
    from datetime import timedelta

    from django.db.models import Count, F
    from django.db.models.functions import TruncDate

    rows = UsageRecord.objects.filter(user=user, created_at__date__gte=start, created_at__date__lte=end)
    per_day = dict(
        rows.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(t=Sum("cost_micro"))
        .values_list("day", "t")
    )
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]

    def by(column):
        return list(
            rows.values(name=F(column))
            .annotate(calls=Count("id"), cost_micro=Sum("cost_micro", default=0))
            .order_by("-cost_micro", "name")
        )

    return {
        "days": [(day, per_day.get(day) or 0) for day in days],
        "by_model": by("model_name"),
        "by_token": by("token_name"),
        "total_micro": sum(v or 0 for v in per_day.values()),
    }


def recent_failures(*, user, limit: int = 5):
    return UsageRecord.objects.filter(user=user, status=UsageStatus.ERROR).order_by("-created_at")[:limit]


def usage_for_user(*, user):
    return UsageRecord.objects.filter(user=user).select_related("token")


def ledger_for_user(*, user):
    return LedgerEntry.objects.filter(wallet__user=user)


@dataclass(frozen=True)
class LedgerRow:
    """One line a person reads: a call's hold, release, charge and refund folded together,
    or one recharge, bonus or adjustment on its own."""

    request_id: str | None
    at: object
    amount_micro: int
    balance_after_micro: int
    kind: str
    memo: str
    lines: tuple


def _row_kind(kinds: set[str]) -> str:
    if kinds & {LedgerKind.HOLD, LedgerKind.RELEASE, LedgerKind.CHARGE, LedgerKind.REFUND}:
        if LedgerKind.REFUND in kinds:
            return "refunded"
        if LedgerKind.CHARGE in kinds:
            return "charged"
        return "released" if LedgerKind.RELEASE in kinds else "held"
    return next(iter(kinds))


def folded_ledger(entries, *, newest_first: bool = True):
    """Ledger lines grouped per call, as a queryset of `key`/`last_id` rows to paginate;
    `ledger_rows` turns one page of it into `LedgerRow`s."""
    from django.db.models import CharField, Max, Value
    from django.db.models.functions import Cast, Coalesce, Concat

    key = Coalesce("request_id", Concat(Value("#"), Cast("id", CharField())))
    rows = entries.order_by().values(key=key).annotate(last_id=Max("id"))
    return rows.order_by("-last_id" if newest_first else "last_id")


def ledger_rows(entries, page_rows) -> list[LedgerRow]:
    """The page's rows with their lines (from the same scoped `entries`): one query whatever
    the page size."""
    keys = [r["key"] for r in page_rows]
    request_ids = [k for k in keys if not k.startswith("#")]
    ids = [int(k[1:]) for k in keys if k.startswith("#")]
    lines: dict[str, list] = {}
    for e in entries.filter(Q(request_id__in=request_ids) | Q(pk__in=ids)).order_by("id"):
        lines.setdefault(e.request_id or f"#{e.pk}", []).append(e)
    out = []
    for key in keys:
        group = lines.get(key, [])
        if not group:
            continue
        last = group[-1]
        out.append(
            LedgerRow(
                request_id=last.request_id,
                at=last.created_at,
                amount_micro=sum(e.amount_micro for e in group),
                balance_after_micro=last.balance_after_micro,
                kind=_row_kind({e.kind for e in group}),
                memo=next((e.memo for e in group if e.memo), ""),
                lines=tuple(group),
            )
        )
    return out


@dataclass(frozen=True)
class CatalogPrice:
    """A model's final price in one group the user may use: RMB per unit, ratio to official."""

    group: str
    multiplier: Decimal
    ratio_to_official: Decimal
    units: tuple  # (msgid label, official USD, final RMB)


@dataclass(frozen=True)
class CatalogModel:
    name: str
    kind: str
    tier: str
    prices: tuple[CatalogPrice, ...]


def model_catalog(*, user, query: str = "", kind: str = "") -> list[CatalogModel]:
    """Every model the user can call, with its final price in each group they may use
    (as select or fallback group), answered from the routing snapshot: no query per model."""
    snapshot = get_snapshot()
    ug = user.user_group_id
    caller = policy.Caller(user_group_id=ug, group_ids=(), billing_mode="usage_first", user_id=user.pk)
    groups = policy.usable_groups(snapshot, ug, fallback=True, user_id=user.pk)
    bonus = user_bonus_percent(user=user)
    needle = query.strip().lower()
    out = []
    for name in sorted(snapshot.models, key=str.lower):
        model = snapshot.models[name]
        if (needle and needle not in name.lower()) or (kind and model.kind != kind):
            continue
        if policy.model_refusal(snapshot, caller, model) is not None:
            continue
        family = {"video": "videos", "image": "images"}.get(model.kind)
        prices = []
        for group in groups:
            if not policy.offers(group, name, family):
                continue
            multiplier = snapshot.multiplier(group.id, ug)
            units = tuple(
                (label, usd, unit_price_cny(usd, multiplier=multiplier, usd_cny_rate=snapshot.usd_cny_rate))
                for field, _unit, label in UNITS
                if (usd := getattr(model.price, field)) is not None
            )
            prices.append(CatalogPrice(group.name, multiplier, ratio_to_official(multiplier, bonus), units))
        if prices:
            out.append(CatalogModel(name, model.kind, model.tier, tuple(prices)))
    return out


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


# Old records carry no reason code: their structured error code (never the message) says enough.
_REASON_OF_CODE = {
    "model_not_found": "not_offered",
    "upstream_saturated": "saturated",
    "upstream_unavailable": "no_channel",
}


def _record_reason(record, token) -> str:
    """The record's reason code; for older records, the structured code or today's policy verdict."""
    if record.refusal_reason:
        return record.refusal_reason
    if record.error_code in _REASON_OF_CODE:
        return _REASON_OF_CODE[record.error_code]
    if record.http_status == 403 and token is not None:
        verdict = plan(get_snapshot(), Caller.of_token(token), record.model_name)
        return verdict.reason if isinstance(verdict, Refusal) else ""
    return ""


def _reason_advice(reason: str, *, record, token, token_groups, user_group) -> list[dict]:
    """What to change for a routing refusal, by reason code."""
    model_name = record.model_name
    model = Model.objects.filter(name=model_name).first()
    names = ", ".join(g.name for g in token_groups) or _("your token's groups")
    ug = str(user_group or _("none"))
    offering = offering_token_groups(model_name=model_name, user_group=user_group, user=record.user)
    missing = [g for g in offering if g not in token_groups]
    if reason in ("not_offered", "unknown_model"):
        if missing:
            first = missing[0].name
            return [
                _advice(
                    "bad",
                    _(
                        "Model %(model)s is not in %(groups)s; offered by %(others)s — add %(first)s as a "
                        "fallback group on the token, or choose %(first)s as its select group."
                    )
                    % {
                        "model": model_name,
                        "groups": names,
                        "others": ", ".join(g.name for g in missing),
                        "first": first,
                    },
                )
            ]
        if model is None:
            return [
                _advice(
                    "bad",
                    _("There is no model called “%(model)s”. Check the spelling on the Prices & groups page.")
                    % {"model": model_name},
                )
            ]
        return [
            _advice(
                "bad",
                _("No group your user group (%(ug)s) may use offers %(model)s right now.")
                % {"ug": ug, "model": model_name},
            )
        ]
    if reason == "wrong_endpoint":
        return [
            _advice(
                "bad",
                _(
                    "%(model)s is a %(kind)s model: video models are called through POST /v1/videos, other "
                    "models through the chat or messages endpoints."
                )
                % {"model": model_name, "kind": model.kind if model else "?"},
            )
        ]
    if reason == "access":
        text = _(
            "Your user group (%(ug)s) may not use the token's groups that offer %(model)s (%(groups)s)."
        ) % {"ug": ug, "model": model_name, "groups": names}
        if offering:
            text += " " + _("Groups you may use that offer it: %(others)s — choose one on the token.") % {
                "others": ", ".join(g.name for g in offering)
            }
        return [_advice("bad", text)]
    if reason == "tier":
        tiers = ", ".join(user_group.model_tiers or []) if user_group else ""
        return [
            _advice(
                "bad",
                _("%(model)s is a %(tier)s model; your user group (%(ug)s) may call %(tiers)s models.")
                % {
                    "model": model_name,
                    "tier": model.tier if model else "?",
                    "ug": ug,
                    "tiers": tiers or _("no"),
                },
            )
        ]
    if reason == "allowlist":
        return [
            _advice(
                "bad",
                _(
                    "%(model)s is not in the token's model allowlist — add it, or empty the allowlist "
                    "to allow every model."
                )
                % {"model": model_name},
            )
        ]
    if reason == "billing_mode":
        mode = token.get_billing_mode_display() if token is not None else "?"
        return [
            _advice(
                "bad",
                _(
                    "The token's billing mode (%(mode)s) has no price for %(model)s; switch it to "
                    "“usage first” or “call first”."
                )
                % {"mode": mode, "model": model_name},
            )
        ]
    if reason == "saturated":
        out = [
            _advice(
                "warn",
                _(
                    "“Current group's upstream is saturated” is not a limit on your account: "
                    "the upstream channel for this model in this group is busy."
                ),
            ),
            _advice(
                "info",
                _(
                    "Loosen client timeouts (60–120 s) and retry with exponential backoff "
                    "instead of immediate concurrent retries."
                ),
            ),
        ]
        if missing:
            out.append(
                _advice(
                    "info",
                    _("Attach 1–2 fallback groups that offer %(model)s: %(others)s.")
                    % {"model": model_name, "others": ", ".join(g.name for g in missing[:2])},
                )
            )
        out.append(
            _advice(
                "info",
                _(
                    "Preview models (names like *-preview-*) have fluctuating capacity; for "
                    "steady high concurrency evaluate a more stable sibling model."
                ),
            )
        )
        return out
    if reason == "no_channel":
        extra = ""
        if missing:
            extra = " " + _("Adding %(group)s as a fallback group would add more channels for %(model)s.") % {
                "group": missing[0].name,
                "model": model_name,
            }
        return [
            _advice(
                "warn",
                _("No upstream channel for this model was healthy; you were not charged. Retry with backoff.")
                + extra,
            )
        ]
    if reason == "token_quota":
        return [_advice("bad", _("The token's quota is used up — raise or clear its quota."))]
    if reason == "balance":
        return [_advice("bad", _("Your balance does not cover this call — recharge your wallet."))]
    return []


def _status_advice(*, record, token_groups, user_group) -> list[dict]:
    """Advice for failures that are not routing refusals, by status and structured error code."""
    status = record.http_status
    out = []
    if record.error_code == "rate_limit_exceeded":
        out.append(
            _advice(
                "warn",
                _(
                    "This token or account has a requests-per-minute limit set by an "
                    "operator; slow down, or ask for a higher limit."
                ),
            )
        )
    elif status == 402:
        out.append(
            _advice(
                "bad",
                _(
                    "Your balance or the token's quota does not cover this call — recharge "
                    "your wallet or raise the token's quota."
                ),
            )
        )
    elif status == 401:
        out.append(_advice("bad", _("The key was missing, wrong, disabled or expired — check the token.")))
    elif status in (400, 413):
        out.append(
            _advice(
                "bad", _("The request itself was malformed or too large; the message below says which field.")
            )
        )
    elif status == 403:
        out.append(_advice("bad", _("This call was not permitted for this token.")))
    elif status >= 500:
        others = [
            g.name
            for g in offering_token_groups(
                model_name=record.model_name, user_group=user_group, user=record.user
            )
            if g not in token_groups
        ]
        extra = ""
        if others:
            extra = " " + _("Adding %(group)s as a fallback group would add more channels for %(model)s.") % {
                "group": others[0],
                "model": record.model_name,
            }
        out.append(
            _advice(
                "warn",
                _(
                    "Every upstream channel tried for this call failed; you were not "
                    "charged. Retry with backoff."
                )
                + extra,
            )
        )
    return out


def usage_failure_advice(*, record) -> list[dict]:
    """What the user should change, in the guide's words, for one usage record.

    Routing refusals are explained from the record's reason code (`groups.policy.Reason`), the
    same code the relay refused with; nothing is inferred from the message."""
    token = record.token
    user_group = record.user.user_group
    status = record.http_status
    token_groups = []
    if token is not None:
        token_groups = [token.select_group, *[f.group for f in token.fallbacks.select_related("group")]]
    out = []
    if record.status != "error" and status < 400:
        if record.fallback_used:
            out.append(
                _advice(
                    "ok",
                    _(
                        "This call succeeded through the fallback group %(group)s: the groups before it "
                        "in the trace could not serve it."
                    )
                    % {"group": record.group_name},
                )
            )
        else:
            out.append(
                _advice(
                    "ok",
                    _("This call succeeded in the %(group)s group.")
                    % {"group": record.group_name or _("select")},
                )
            )
        return out
    reason = _record_reason(record, token)
    out = _reason_advice(
        reason, record=record, token=token, token_groups=token_groups, user_group=user_group
    ) or _status_advice(record=record, token_groups=token_groups, user_group=user_group)
    if record.error_message:
        out.append(_advice("info", _("Gateway message: %(message)s") % {"message": record.error_message}))
    return out


def usage_explained(*, request_id: str, user=None) -> tuple:
    """A call by its request id with the advice on it, (None, None) when there is none: among
    `user`'s calls ("why did my call fail?"), or with no user among everyone's (operators)."""
    from .models import UsageRecord

    if not request_id:
        return None, None
    calls = (
        UsageRecord.objects.select_related("user", "user__user_group", "token")
        if user is None
        else usage_for_user(user=user)
    )
    record = calls.filter(request_id=request_id).first()
    return record, (usage_failure_advice(record=record) if record is not None else None)
