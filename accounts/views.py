"""Console: sign in/out, the user's dashboard, operator pages for users and the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect, render

from billing.models import Wallet
from billing.selectors import (
    balance_summary,
    ledger_for_user,
    recent_failures,
    spend_by_day,
    usage_by_group,
)
from billing.services import BillingError, wallet_adjust

from .console import paginate, render_list, staff_required
from .filters import AuditLogFilter, UserFilter
from .forms import AdjustForm, UserGroupForm
from .models import AuditLog, User
from .services import user_operator_update


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


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
                ip=request.META.get("REMOTE_ADDR"),
                user_group=group_form.cleaned_data["user_group"],
                user_group_pinned=group_form.cleaned_data["user_group_pinned"],
            )
            messages.success(request, f"{customer.username}'s user group saved.")
            return redirect("accounts:ops_user", pk=pk)
    elif request.method == "POST" and request.POST.get("action") == "adjust":
        adjust_form = AdjustForm(request.POST)
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
                messages.success(request, f"Balance of {customer.username} adjusted.")
                return redirect("accounts:ops_user", pk=pk)
    context = {
        "customer": customer,
        "balance": balance_summary(user=customer),
        "ledger": ledger_for_user(user=customer)[:20],
        "tokens": customer.tokens.select_related("select_group")[:50],
        "group_form": group_form,
        "adjust_form": adjust_form,
    }
    return render(request, "ops/user_detail.html", context)


@staff_required
def ops_audit(request):
    filt = AuditLogFilter(request.GET, queryset=AuditLog.objects.all())
    context = {"filter": filt, "page": paginate(request, filt.qs)}
    return render_list(request, "ops/audit.html", context)
