"""Console pages for prices, usage, wallet and failure explanations; operator billing pages."""

from __future__ import annotations

import csv
import re
import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_POST

from accounts.console import paginate, render_list, staff_required
from accounts.templatetags.console import yuan
from core.pricing import BillingBasis, ModelPrice, PricingError, Usage, billing_basis, format_cny, to_micro
from groups.models import Model, ModelKind, ModelTier
from groups.quotes import explain_price, quote_usage
from groups.selectors import (
    fallback_token_groups,
    models_by_group,
    offering_token_groups,
    recommend_group,
    selectable_token_groups,
)
from tokens.models import Token

from .charts import bar_chart
from .filters import LedgerEntryFilter, usage_filter
from .forms import BonusTierForm, RateForm, RechargeForm, SpendRangeForm
from .ledger import BillingError
from .models import Recharge, RechargeBonusTier
from .selectors import (
    balance_summary,
    best_bonus_percent,
    folded_ledger,
    ledger_for_user,
    ledger_rows,
    model_catalog,
    spend_report,
    usage_explained,
    usage_failure_advice,
    usage_for_user,
    usd_cny_rate,
    user_bonus_percent,
)
from .services import (
    PaymentRefConflict,
    bonus_tier_delete,
    bonus_tier_for,
    bonus_tier_save,
    setting_set,
    wallet_recharge,
)

# The guide's quick decision, in its own words; the helper below recommends from live data.
SCENARIOS = [  # msgids: the template translates them
    (gettext_noop("Text, multimodal, NanoBanana, Veo 3.1 and most models"), "Default", ""),
    (
        gettext_noop("Claude + domestic coding models in Claude Code (/v1/messages format)"),
        "ClaudeCode",
        gettext_noop("5 percent off by default, stacks with your recharge bonus"),
    ),
    (gettext_noop("Sora 2 official video"), "Sora2Official", gettext_noop("billed per second")),
    (gettext_noop("Wan / Seedance 2 video"), "Wan / Seedance2", gettext_noop("their dedicated groups")),
    (
        gettext_noop("Unstable high-concurrency workloads"),
        "",
        gettext_noop("attach 1–2 fallback groups on the token"),
    ),
]


def _example_usage(model: Model, basis: str) -> tuple[Usage, str]:
    if basis == BillingBasis.TOKENS:
        return Usage(input_tokens=10_000, output_tokens=2_000), _("10,000 input + 2,000 output tokens")
    if basis == BillingBasis.SECONDS:
        return Usage(seconds=Decimal(10)), _("a 10-second video")
    if basis == BillingBasis.IMAGES:
        return Usage(images=1), _("one image")
    return Usage(calls=1), _("one call")


def _bonus_choices() -> list[Decimal]:
    tiers = sorted({t.bonus_percent for t in RechargeBonusTier.objects.all()})
    return [Decimal(0), *[t for t in tiers if t]]


@login_required
def prices(request):
    """Price explainer for a token or group and a model, plus the "which group" helper."""
    user = request.user
    ug = user.user_group
    ug_id = ug.pk if ug else None
    usable = list(fallback_token_groups(user_group=ug, user=user).distinct())
    tokens = list(Token.objects.filter(user=user).select_related("select_group"))
    models = list(Model.objects.filter(enabled=True))
    token = group = model = None
    token_id = request.GET.get("token")
    if token_id:
        if not token_id.isdigit():
            raise Http404
        token = get_object_or_404(Token.objects.select_related("select_group"), pk=token_id, user=user)
        group = token.select_group
    elif request.GET.get("group"):
        group = next((g for g in usable if g.name == request.GET["group"]), None)
    if group is None:
        group = selectable_token_groups(user_group=ug, user=user).first() or (usable[0] if usable else None)
    offered = models_by_group(group_ids=[g.pk for g in usable] + ([group.pk] if group else []))
    name = request.GET.get("model")
    model = next((m for m in models if m.name == name), None)
    if model is None and group is not None:
        first = offered.get(group.pk, [])
        model = next((m for m in models if first and m.name == first[0]), None)
    own = user_bonus_percent(user=user)
    try:
        bonus = Decimal(request.GET["bonus"]) if request.GET.get("bonus") else own
    except (InvalidOperation, ValueError):
        bonus = own
    bonus = min(max(bonus, Decimal(0)), Decimal(100))
    context = {
        "tokens": tokens,
        "groups": usable,
        "models": models,
        "token": token,
        "group": group,
        "model": model,
        "bonus": bonus,
        "bonus_choices": _bonus_choices(),
        "scenarios": SCENARIOS,
    }
    if model is not None and group is not None:
        context["explanation"] = explain_price(
            model=model, group=group, user_group_id=ug_id, bonus_percent=bonus
        )
        context["offered"] = model.name in offered.get(group.pk, [])
        offering = offering_token_groups(model_name=model.name, user_group=ug, user=user)
        context["offering"] = offering
        context["comparison"] = [
            explain_price(model=model, group=g, user_group_id=ug_id, bonus_percent=bonus) for g in offering
        ]
        context["tier_ok"] = bool(ug and model.tier in (ug.model_tiers or []))
        mode = token.billing_mode if token else "usage_first"
        try:
            basis = billing_basis(ModelPrice.of(model), mode)
            usage, label = _example_usage(model, basis)
            context["quote"] = quote_usage(
                model=model,
                group=group,
                user_group_id=ug_id,
                billing_mode=mode,
                usage=usage,
                bonus_percent=best_bonus_percent(),
            )
            context["quote_label"] = label
        except PricingError as exc:
            context["quote_error"] = str(exc)
        if token is not None:
            route = [token.select_group, *[f.group for f in token.fallbacks.select_related("group")]]
            offered = models_by_group(group_ids=[g.pk for g in route])
            context["route"] = [
                {
                    "group": g,
                    "offered": model.name in offered.get(g.pk, []),
                    "explanation": explain_price(
                        model=model, group=g, user_group_id=ug_id, bonus_percent=bonus
                    ),
                }
                for g in route
            ]
    scenario_model = next((m for m in models if m.name == request.GET.get("scenario_model")), None)
    if scenario_model is not None:
        context["recommendation"] = recommend_group(model=scenario_model, user_group=ug)
    context["scenario_model"] = scenario_model
    return render_list(request, "billing/prices.html", context)


@login_required
def usage_list(request):
    filt = usage_filter(request.GET, user=request.user)
    context = {"filter": filt, "page": paginate(request, filt.qs)}
    return render_list(request, "billing/usage.html", context)


@login_required
def usage_detail(request, request_id: str):
    record = get_object_or_404(usage_for_user(user=request.user), request_id=request_id)
    context = {"record": record, "advice": usage_failure_advice(record=record)}
    template = "billing/usage_detail.html"
    if request.htmx and request.htmx.target == "dialog":
        template += "#detail"
    return render(request, template, context)


def _cell(value):
    """Neutralise spreadsheet formulas in text that came from API callers (model names, ids)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Echo:
    def write(self, value):
        return value


CSV_COLUMNS = [
    "created_at",
    "request_id",
    "token",
    "model",
    "group",
    "fallback_used",
    "status",
    "http_status",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "seconds",
    "images",
    "cost_cny",
    "latency_ms",
    "error_code",
]


@login_required
def models_catalog(request):
    """Every model the user can call and its final price in each of their groups, searchable."""
    query, kind = request.GET.get("q", "")[:100], request.GET.get("kind", "")
    context = {
        "catalog": model_catalog(user=request.user, query=query, kind=kind),
        "q": query,
        "kind": kind,
        "kinds": ModelKind.choices,
        "tiers": dict(ModelTier.choices),
    }
    return render_list(request, "billing/models.html", context)


@login_required
def spend(request):
    """Spend charts over a date range: per day (bars with an axis), per model and per token."""
    today = timezone.localdate()
    initial = {"date_from": today - timedelta(days=29), "date_to": today}
    form = SpendRangeForm(request.GET if "date_from" in request.GET else None, initial=initial)
    start, end = (
        (form.cleaned_data["date_from"], form.cleaned_data["date_to"])
        if form.is_valid()
        else (
            initial["date_from"],
            initial["date_to"],
        )
    )
    report = spend_report(user=request.user, start=start, end=end)
    points = [
        (day.strftime("%m-%d"), f"{date_format(day, 'SHORT_DATE_FORMAT')}: {yuan(micro, 4)}", micro)
        for day, micro in report["days"]
    ]
    context = {"form": form, "report": report, "chart": bar_chart(points), "start": start, "end": end}
    return render(request, "billing/spend.html", context)


@login_required
def usage_export(request):
    """CSV of the filtered usage log, streamed so a long history does not load into memory."""
    filt = usage_filter(request.GET, user=request.user)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for r in filt.qs.iterator(chunk_size=1000):
            yield writer.writerow(
                _cell(v)
                for v in [
                    r.created_at.isoformat(),
                    r.request_id,
                    r.token_name,
                    r.model_name,
                    r.group_name,
                    "yes" if r.fallback_used else "no",
                    r.status,
                    r.http_status,
                    r.input_tokens,
                    r.output_tokens,
                    r.cache_read_tokens,
                    r.seconds,
                    r.images,
                    format_cny(r.cost_micro),
                    r.latency_ms,
                    r.error_code,
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-{stamp}.csv"'
    return response


@login_required
def why(request):
    """'Why did my call fail?': a request id from X-Request-Id → its trace and what to change."""
    request_id = (request.GET.get("request_id") or "").strip()[:64]
    record, advice = usage_explained(request_id=request_id, user=request.user)
    context = {"request_id": request_id, "record": record, "advice": advice}
    return render_list(request, "billing/why.html", context)


@login_required
def wallet(request):
    filt = LedgerEntryFilter(request.GET, queryset=ledger_for_user(user=request.user))
    page = paginate(request, folded_ledger(filt.qs, newest_first=request.GET.get("ordering") != "created_at"))
    context = {
        "balance": balance_summary(user=request.user),
        "filter": filt,
        "page": page,
        "rows": ledger_rows(filt.qs, page),
        "tiers": RechargeBonusTier.objects.all(),
        "form": RechargeForm(),
        "recharges": Recharge.objects.filter(user=request.user)[:5],
    }
    return render_list(request, "billing/wallet.html", context)


def _recharge_preview(form: RechargeForm) -> dict:
    amount = form.amount_micro
    tier = bonus_tier_for(amount)
    percent = tier.bonus_percent if tier else Decimal(0)
    bonus = to_micro(Decimal(amount) * percent / 100 / 1_000_000)
    return {"amount_micro": amount, "tier": tier, "bonus_micro": bonus, "total_micro": amount + bonus}


PAYMENT_REF = re.compile(r"^sim-[0-9a-f]{32}$")


def _payment_ref(value: str | None) -> str:
    """The recharge intent's reference: kept from the form/URL once issued, new otherwise."""
    value = (value or "").strip()
    return value if PAYMENT_REF.match(value) else f"sim-{uuid.uuid4().hex}"


@login_required
def recharge(request):
    """Two steps: review (amount, bonus tier, total credited), then a simulated payment.

    The payment reference is issued once per recharge intent and travels in the review URL and
    the pay form, so Back + Pay (or a double click) replays the same reference and is credited once.
    """
    data = request.POST if request.method == "POST" else request.GET
    ref = _payment_ref(data.get("ref"))
    form = RechargeForm(data if data.get("amount") is not None else None)
    paid = Recharge.objects.filter(user=request.user, payment_ref=ref).first()
    context = {"form": form, "tiers": RechargeBonusTier.objects.all(), "payment_ref": ref, "paid": paid}
    if paid is None and form.is_bound and form.is_valid():
        context["preview"] = _recharge_preview(form)
        if request.method == "POST" and request.POST.get("step") == "pay":
            if ref != request.POST.get("ref"):
                raise Http404
            try:
                done = wallet_recharge(user=request.user, amount_micro=form.amount_micro, payment_ref=ref)
            except (IntegrityError, PaymentRefConflict):
                messages.info(request, _("This payment was already credited."))
                return redirect("billing:wallet")
            except BillingError as exc:
                form.add_error("amount", str(exc))
            else:
                messages.success(
                    request,
                    _("Paid %(amount)s (simulated); bonus +%(percent)s%% credited.")
                    % {"amount": yuan(done.amount_micro), "percent": f"{done.bonus_percent.normalize():f}"},
                )
                return redirect("billing:wallet")
    elif paid is not None and request.method == "POST":
        messages.info(request, _("This payment was already credited."))
        return redirect("billing:wallet")
    template = "billing/recharge.html"
    if request.htmx and request.method == "GET":
        template += "#preview"
    return render(request, template, context)


# ---- operator ------------------------------------------------------------------------------


@staff_required
def ops_bonus_tiers(request):
    form = BonusTierForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        min_micro = to_micro(form.cleaned_data["min_amount"])
        tier = RechargeBonusTier.objects.filter(min_amount_micro=min_micro).first()
        try:
            bonus_tier_save(
                actor=request.user,
                tier=tier,
                min_amount_micro=min_micro,
                bonus_percent=form.cleaned_data["bonus_percent"],
            )
        except (ValidationError, BillingError) as exc:
            form.add_error(None, getattr(exc, "messages", [str(exc)]))
        else:
            messages.success(request, _("Bonus tier saved."))
            return redirect("billing:ops_bonus_tiers")
    context = {"tiers": RechargeBonusTier.objects.all(), "form": form}
    return render(request, "ops/bonus_tiers.html", context)


@staff_required
@require_POST
def ops_bonus_tier_delete(request, pk: int):
    tier = get_object_or_404(RechargeBonusTier, pk=pk)
    bonus_tier_delete(actor=request.user, tier=tier)
    messages.success(request, _("Bonus tier deleted."))
    return redirect("billing:ops_bonus_tiers")


@staff_required
def ops_settings(request):
    """usd_cny_rate, with a confirmation step showing what a few prices become."""
    current = usd_cny_rate()
    form = RateForm(request.POST or None, initial={"usd_cny_rate": current})
    context = {"form": form, "current": current}
    if request.method == "POST" and form.is_valid():
        new = form.cleaned_data["usd_cny_rate"]
        if request.POST.get("confirm") == "1" and new != current:
            setting_set(actor=request.user, key="usd_cny_rate", value=str(new))
            messages.success(
                request,
                _("usd_cny_rate changed from %(current)s to %(new)s.") % {"current": current, "new": new},
            )
            return redirect("billing:ops_settings")
        if new == current:
            messages.info(request, _("The rate is unchanged."))
            return redirect("billing:ops_settings")
        samples = []
        for m in Model.objects.filter(enabled=True)[:8]:
            usd = m.input_usd_per_mtok or m.usd_per_call or m.usd_per_second or m.usd_per_image
            if usd is not None:
                samples.append({"model": m.name, "usd": usd, "before": usd * current, "after": usd * new})
        context.update({"confirming": True, "new": new, "samples": samples})
    return render(request, "ops/settings.html", context)
