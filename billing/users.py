"""Console pages about one user's money: their dashboard, and the operator's user list and
user page (user group, per-user token group grants, balance adjustments)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.console import paginate, render_list, staff_required
from accounts.filters import UserFilter
from accounts.models import User
from accounts.services import user_operator_update, user_token_group_grant, user_token_group_revoke
from accounts.templatetags.console import yuan
from core.http import client_ip
from groups.models import TokenGroup

from .forms import AdjustForm, UserGroupForm
from .ledger import BillingError
from .models import Wallet
from .selectors import balance_summary, ledger_for_user, recent_failures, spend_by_day, usage_by_group
from .services import wallet_adjust


def _bars(series: list[tuple]) -> list[dict]:
    """Coordinates for the inline SVG spend chart (100 px per day, baseline at y=160)."""
    top = max((micro for _, micro in series), default=0) or 1
    bars = []
    for i, (day, micro) in enumerate(series):
        h = round(micro * 140 / top)
        bars.append({"day": day, "micro": micro, "x": i * 100 + 15, "cx": i * 100 + 50, "h": h, "y": 160 - h})
    return bars


@login_required
def dashboard(request):
    user = request.user
    series = spend_by_day(user=user, days=7)
    context = {
        "balance": balance_summary(user=user),
        "spend_today": series[-1][1],
        "spend_week": sum(micro for _, micro in series),
        "bars": _bars(series),
        "by_group": usage_by_group(user=user, days=7),
        "failures": recent_failures(user=user, limit=5),
        "token_count": user.tokens.count(),
    }
    return render(request, "console/dashboard.html", context)


@staff_required
def ops_users(request):
    wallets = Wallet.objects.filter(user=OuterRef("pk"))
    qs = User.objects.select_related("user_group").annotate(
        balance_micro=Subquery(wallets.values("balance_micro"))
    )
    filt = UserFilter(request.GET, queryset=qs.order_by("username"))
    context = {"filter": filt, "page": paginate(request, filt.qs)}
    return render_list(request, "ops/users.html", context)


@staff_required
def ops_user_detail(request, pk: int):
    customer = get_object_or_404(User.objects.select_related("user_group"), pk=pk)
    group_form = UserGroupForm(
        initial={"user_group": customer.user_group, "user_group_pinned": customer.user_group_pinned}
    )
    adjust_form = AdjustForm()
    if request.method == "POST" and request.POST.get("action") == "group":
        group_form = UserGroupForm(request.POST)
        if group_form.is_valid():
            user_operator_update(
                actor=request.user,
                user=customer,
                ip=client_ip(request),
                user_group=group_form.cleaned_data["user_group"],
                user_group_pinned=group_form.cleaned_data["user_group_pinned"],
            )
            messages.success(request, _("%(user)s's user group saved.") % {"user": customer.username})
            return redirect("billing:ops_user", pk=pk)
    elif request.method == "POST" and request.POST.get("action") in ("grant", "revoke"):
        return _grant_or_revoke(request, customer)
    elif request.method == "POST" and request.POST.get("action") == "adjust":
        adjust_form = AdjustForm(request.POST)
        if adjust_form.is_valid() and request.POST.get("confirm") != "1":
            return _confirm_adjust(request, customer, adjust_form)
        if adjust_form.is_valid():
            try:
                wallet_adjust(
                    user=customer,
                    amount_micro=adjust_form.amount_micro,
                    reason=adjust_form.cleaned_data["reason"],
                    actor=request.user,
                )
            except BillingError as exc:
                adjust_form.add_error("amount", str(exc))
            else:
                messages.success(request, _("Balance of %(user)s adjusted.") % {"user": customer.username})
                return redirect("billing:ops_user", pk=pk)
    context = {
        "customer": customer,
        "balance": balance_summary(user=customer),
        "ledger": ledger_for_user(user=customer)[:20],
        "tokens": customer.tokens.select_related("select_group")[:50],
        "group_form": group_form,
        "adjust_form": adjust_form,
        "granted": customer.extra_token_groups.order_by("name"),
        "grantable": TokenGroup.objects.exclude(granted_users=customer).order_by("name"),
    }
    return render(request, "ops/user_detail.html", context)


def _confirm_adjust(request, customer, form):
    """The server-side confirmation of a balance adjustment: who, how much, the balance after."""
    amount = form.amount_micro
    balance = balance_summary(user=customer)["balance_micro"]
    context = {
        "title": _("Adjust the balance of %(user)s?") % {"user": customer.username},
        "lines": [
            _("Amount: %(amount)s · balance %(before)s → %(after)s")
            % {
                "amount": ("+" if amount > 0 else "") + yuan(amount),
                "before": yuan(balance),
                "after": yuan(balance + amount),
            },
            _("Reason: %(reason)s") % {"reason": form.cleaned_data["reason"]},
        ],
        "hidden": [
            ("action", "adjust"),
            ("amount", request.POST.get("amount", "")),
            ("reason", form.cleaned_data["reason"]),
        ],
        "button": _("Yes, adjust the balance"),
        "back": reverse("billing:ops_user", args=[customer.pk]),
    }
    return render(request, "console/confirm_action.html", context)


def _grant_or_revoke(request, customer):
    """Per-user extra visible token groups: grant or revoke one, audited."""
    group = get_object_or_404(TokenGroup, pk=request.POST.get("token_group") or 0)
    service = user_token_group_grant if request.POST["action"] == "grant" else user_token_group_revoke
    service(actor=request.user, user=customer, token_group=group, ip=client_ip(request))
    if request.POST["action"] == "grant":
        messages.success(request, _("%(user)s may now use %(group)s.") % {"user": customer, "group": group})
    else:
        messages.success(
            request, _("%(user)s may no longer use %(group)s.") % {"user": customer, "group": group}
        )
    return redirect("billing:ops_user", pk=customer.pk)
