"""Operator pages over every user's calls: the all-users usage log, the request-id lookup
("why did customer X's call fail?") and spend/error tables per user and per channel."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.db.models import Count, Q, Sum
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.console import paginate, render_list, staff_required

from .filters import usage_filter
from .models import UsageRecord, UsageStatus
from .selectors import usage_explained


@staff_required
def ops_usage(request):
    filt = usage_filter(request.GET)
    context = {"filter": filt, "page": paginate(request, filt.qs)}
    return render_list(request, "ops/usage.html", context)


@staff_required
def ops_lookup(request):
    """Any user's call by its X-Request-Id: who, which token, the route, the price, the reason."""
    request_id = (request.GET.get("request_id") or "").strip()[:64]
    record, advice = usage_explained(request_id=request_id)
    context = {"request_id": request_id, "record": record, "advice": advice}
    return render_list(request, "ops/lookup.html", context)


def _date_range(request) -> tuple:
    """The page's [from, until) dates; the last 7 days by default, bad input ignored."""
    today = timezone.localdate()
    form = forms.Form(request.GET)
    form.fields["date_from"] = forms.DateField(required=False)
    form.fields["date_to"] = forms.DateField(required=False)
    start, end = today - timedelta(days=6), today
    if form.is_valid():
        start = form.cleaned_data["date_from"] or start
        end = form.cleaned_data["date_to"] or end
    return start, end


def _spend_rows(*, key: str, start, end) -> list[dict]:
    rows = (
        UsageRecord.objects.filter(created_at__date__gte=start, created_at__date__lte=end)
        .values(key)
        .annotate(
            calls=Count("id"),
            errors=Count("id", filter=Q(status=UsageStatus.ERROR)),
            cost=Sum("cost_micro", default=0),
        )
        .order_by("-cost", "-calls")
    )
    return [
        {
            "name": row[key] or "",
            "calls": row["calls"],
            "errors": row["errors"],
            "cost_micro": row["cost"],
        }
        for row in rows
    ]


@staff_required
def ops_spend(request):
    """Spend and errors per user or per channel over a date range."""
    by = "channel" if request.GET.get("by") == "channel" else "user"
    start, end = _date_range(request)
    key = "channel_name" if by == "channel" else "user__username"
    context = {
        "by": by,
        "date_from": start,
        "date_to": end,
        "rows": _spend_rows(key=key, start=start, end=end),
        "column": _("Channel") if by == "channel" else _("User"),
    }
    return render(request, "ops/spend.html", context)
