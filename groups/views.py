"""Operator console for routing configuration: token groups, user groups, channels, models.

Views parse forms and call groups.services; price previews come from groups.quotes.
"""

from __future__ import annotations

import copy
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.console import paginate, render_list, staff_required

from .filters import ChannelFilter, ModelFilter, TokenGroupFilter, UserGroupFilter
from .forms import AccessForm, ChannelForm, ModelForm, TokenGroupForm, UserGroupForm
from .models import (
    PRICE_FIELDS,
    Channel,
    ChannelHealth,
    ChannelModel,
    GroupAccess,
    Model,
    TokenGroup,
    UserGroup,
)
from .probes import channel_probe
from .quotes import explain_price
from .saturation import channel_state, channel_states
from .selectors import channel_sole_routes, models_by_group, serving_token_groups
from .services import (
    channel_save,
    channel_set_enabled,
    group_access_remove,
    group_access_set,
    model_save,
    token_group_save,
    user_group_save,
)

NO_BONUS = Decimal(0)


def _service_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _confirm(request, *, title: str, intro: str, rows: list[dict], back: str):
    """Ask before a price-changing save: before/after table, the same POST re-sent with confirm=1."""
    hidden = [
        (k, v) for k in request.POST for v in request.POST.getlist(k) if k not in ("csrfmiddlewaretoken",)
    ]
    context = {"title": title, "intro": intro, "rows": rows, "hidden": hidden, "back": back}
    return render(request, "ops/confirm.html", context)


def _list_price(model: Model, group: TokenGroup):
    """A model's price in a group at the group's own multiplier, before any bonus."""
    return explain_price(model=model, group=group, user_group_id=None, bonus_percent=NO_BONUS)


def _multiplier_change_rows(group: TokenGroup, *, before: Decimal, after: Decimal) -> list[dict]:
    """Before/after prices of every model the group offers when its multiplier changes."""
    before_group, after_group = copy.copy(group), copy.copy(group)
    before_group.multiplier, after_group.multiplier = before, after
    models = Model.objects.filter(name__in=models_by_group(group_ids=[group.pk]).get(group.pk, []))
    return _price_rows((m.name, _list_price(m, before_group), _list_price(m, after_group)) for m in models)


def _price_rows(pairs) -> list[dict]:
    """Before/after unit prices from (label, before explanation, after explanation) triples."""
    rows = []
    for label, before, after in pairs:
        after_units = {u.unit: u for u in after.units}
        before_units = {u.unit: u for u in before.units}
        for unit in [*before_units, *[u for u in after_units if u not in before_units]]:
            b, a = before_units.get(unit), after_units.get(unit)
            rows.append(
                {
                    "label": label,
                    "unit": (a or b).label,
                    "before": b.final_cny if b else None,
                    "after": a.final_cny if a else None,
                    "ratio_before": before.ratio_to_official,
                    "ratio_after": after.ratio_to_official,
                    "changed": (b.final_cny if b else None) != (a.final_cny if a else None),
                }
            )
    return rows


# ---- token groups --------------------------------------------------------------------------


@staff_required
def token_groups(request):
    qs = TokenGroup.objects.annotate(
        channel_count=Count("channels", distinct=True), access_count=Count("accesses", distinct=True)
    ).order_by("sort_order", "name")
    filt = TokenGroupFilter(request.GET, queryset=qs)
    page = paginate(request, filt.qs)
    offered = models_by_group(group_ids=[g.pk for g in page])
    context = {"filter": filt, "page": page, "offered": offered}
    return render_list(request, "ops/token_groups.html", context)


@staff_required
def token_group_edit(request, pk: int | None = None):
    group = get_object_or_404(TokenGroup, pk=pk) if pk else None
    form = TokenGroupForm.for_instance(group, request.POST if request.method == "POST" else None)
    if request.method == "POST" and request.POST.get("action", "save") == "save" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in TokenGroupForm.FIELDS}
        changed = group is not None and data["multiplier"] != group.multiplier
        if changed and request.POST.get("confirm") != "1":
            return _confirm(
                request,
                title=_("Change the multiplier of %(group)s?") % {"group": group.name},
                intro=_(
                    "%(before)s× → %(after)s×. Every call served by this group from now on is charged at the "
                    "new prices below (user groups with an override keep theirs)."
                )
                % {
                    "before": f"{group.multiplier.normalize():f}",
                    "after": f"{data['multiplier'].normalize():f}",
                },
                rows=_multiplier_change_rows(group, before=group.multiplier, after=data["multiplier"]),
                back=request.path,
            )
        try:
            group = token_group_save(actor=request.user, token_group=group, **data)
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("Token group %(name)s saved.") % {"name": group.name})
            return redirect("groups:token_group", pk=group.pk)
    context = {"group": group, "form": form}
    if group is not None:
        context.update(_token_group_context(group))
    return render(request, "ops/token_group_edit.html", context)


def _token_group_context(group: TokenGroup) -> dict:
    channels = list(group.channels.prefetch_related("channel_models__model"))
    states = channel_states([c.pk for c in channels])
    for c in channels:
        c.state = channel_state(c, states[c.pk])
    return {
        "accesses": GroupAccess.objects.filter(token_group=group).select_related("user_group"),
        "other_user_groups": UserGroup.objects.exclude(accesses__token_group=group),
        "channels": channels,
        "access_form": AccessForm(),
    }


@staff_required
@require_POST
def token_group_access(request, pk: int):
    """Set or remove a user group's access to a token group (override changes ask first)."""
    group = get_object_or_404(TokenGroup, pk=pk)
    form = AccessForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("Invalid access settings: %(errors)s")
            % {"errors": "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())},
        )
        return redirect("groups:token_group", pk=pk)
    user_group = get_object_or_404(UserGroup, pk=form.cleaned_data["user_group"])
    if request.POST.get("action") == "remove":
        group_access_remove(actor=request.user, user_group=user_group, token_group=group)
        messages.success(
            request,
            _("%(user_group)s may no longer use %(group)s.")
            % {"user_group": user_group.name, "group": group.name},
        )
        return redirect("groups:token_group", pk=pk)
    override = form.cleaned_data["multiplier_override"]
    current = GroupAccess.objects.filter(user_group=user_group, token_group=group).first()
    old = current.multiplier_override if current else None
    if override != old and request.POST.get("confirm") != "1":
        before, after = old or group.multiplier, override or group.multiplier
        return _confirm(
            request,
            title=_("Change what %(user_group)s pays in %(group)s?")
            % {"user_group": user_group.name, "group": group.name},
            intro=_("Multiplier for %(user_group)s: %(before)s× → %(after)s×.")
            % {
                "user_group": user_group.name,
                "before": f"{before.normalize():f}",
                "after": f"{after.normalize():f}",
            },
            rows=_multiplier_change_rows(group, before=before, after=after),
            back=reverse("groups:token_group", args=[pk]),
        )
    try:
        group_access_set(
            actor=request.user,
            user_group=user_group,
            token_group=group,
            fallback_only=form.cleaned_data["fallback_only"],
            multiplier_override=override,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("%(user_group)s may use %(group)s.") % {"user_group": user_group.name, "group": group.name},
        )
    return redirect("groups:token_group", pk=pk)


# ---- user groups ---------------------------------------------------------------------------


@staff_required
def user_groups(request):
    qs = (
        UserGroup.objects.annotate(user_count=Count("users", distinct=True))
        .prefetch_related("accesses__token_group")
        .order_by("sort_order", "name")
    )
    filt = UserGroupFilter(request.GET, queryset=qs)
    return render_list(request, "ops/user_groups.html", {"filter": filt, "page": paginate(request, filt.qs)})


@staff_required
def user_group_edit(request, pk: int | None = None):
    ug = get_object_or_404(UserGroup, pk=pk) if pk else None
    initial = {f: getattr(ug, f) for f in UserGroupForm.FIELDS} if ug else {}
    form = UserGroupForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            ug = user_group_save(
                actor=request.user, user_group=ug, **{f: form.cleaned_data[f] for f in UserGroupForm.FIELDS}
            )
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("User group %(name)s saved.") % {"name": ug.name})
            return redirect("groups:user_group", pk=ug.pk)
    accesses = GroupAccess.objects.filter(user_group=ug).select_related("token_group") if ug else []
    return render(request, "ops/user_group_edit.html", {"ug": ug, "form": form, "accesses": accesses})


# ---- channels ------------------------------------------------------------------------------


@staff_required
def channels(request):
    qs = Channel.objects.prefetch_related("token_groups", "served_models").distinct()
    filt = ChannelFilter(request.GET, queryset=qs)
    page = paginate(request, filt.qs)
    states = channel_states([c.pk for c in page])
    rows = [{"channel": c, "state": channel_state(c, states.get(c.pk, {}))} for c in page]
    return render_list(request, "ops/channels.html", {"filter": filt, "page": page, "rows": rows})


def _latency_chart(points: list[ChannelHealth]) -> dict:
    """SVG polyline (600×120) of probe latencies, oldest left; failed probes as red dots."""
    pts = list(reversed(points))
    top = max((p.latency_ms or 0 for p in pts), default=0) or 1
    step = 600 / max(len(pts) - 1, 1)
    coords, marks = [], []
    for i, p in enumerate(pts):
        x = round(i * step, 1)
        y = round(110 - (p.latency_ms or 0) * 100 / top, 1)
        coords.append(f"{x},{y}")
        if p.verdict != "healthy":
            marks.append({"x": x, "y": y, "verdict": p.verdict, "at": p.at})
    return {"points": " ".join(coords), "marks": marks, "top": top, "count": len(pts)}


@staff_required
def channel_edit(request, pk: int | None = None):
    channel = get_object_or_404(Channel, pk=pk) if pk else None
    form = ChannelForm.for_instance(channel, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in ChannelForm.FIELDS}
        existing = (
            dict(ChannelModel.objects.filter(channel=channel).values_list("model_id", "upstream_name"))
            if channel
            else {}
        )
        models = {m: existing.get(m.pk, "") for m in form.cleaned_data["models"]}
        try:
            channel = channel_save(
                actor=request.user,
                channel=channel,
                api_key=form.cleaned_data["api_key"] or None,
                token_groups=form.cleaned_data["token_groups"],
                models=models,
                **data,
            )
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("Channel %(name)s saved.") % {"name": channel.name})
            return redirect("groups:channel", pk=channel.pk)
    context = {"channel": channel, "form": form}
    if channel is not None:
        health = list(ChannelHealth.objects.filter(channel=channel)[:60])
        context.update(
            {
                "state": channel_state(channel, channel_states([channel.pk])[channel.pk]),
                "chart": _latency_chart(health),
                "last_probe": health[0] if health else None,
                "recent_429": ChannelHealth.objects.filter(channel=channel, status_code=429)[:10],
            }
        )
    return render(request, "ops/channel_edit.html", context)


@staff_required
@require_POST
def channel_toggle(request, pk: int):
    """Enabling acts at once; disabling removes capacity, so it first asks (server-side, no JS),
    naming every group/model this channel is the last enabled channel for."""
    channel = get_object_or_404(Channel, pk=pk)
    enable = not channel.is_active
    if not enable and request.POST.get("confirm") != "1":
        context = {
            "title": _("Disable channel %(name)s?") % {"name": channel.name},
            "lines": [_("New calls stop using this channel at once.")],
            "warnings": [
                _(
                    "%(channel)s is the last enabled channel for %(model)s in %(group)s: "
                    "those calls will fail."
                )
                % {"channel": channel.name, "model": model, "group": group}
                for group, model in channel_sole_routes(channel_id=channel.pk)
            ],
            "hidden": [("next", request.POST.get("next", ""))],
            "button": _("Yes, disable the channel"),
            "back": reverse("groups:channel", args=[pk])
            if request.POST.get("next") == "detail"
            else reverse("groups:channels"),
        }
        return render(request, "console/confirm_action.html", context)
    channel_set_enabled(actor=request.user, channel=channel, enabled=enable, reason="console")
    messages.success(
        request,
        (_("Channel %(name)s enabled.") if enable else _("Channel %(name)s disabled."))
        % {"name": channel.name},
    )
    if request.POST.get("next") == "detail":
        return redirect("groups:channel", pk=pk)
    return redirect("groups:channels")


@staff_required
@require_POST
def channel_probe_now(request, pk: int):
    """Probe one channel right away and show the verdict it produced."""
    channel = get_object_or_404(Channel, pk=pk)
    outcome = channel_probe(channel_id=channel.pk)
    result = outcome.result
    messages.info(
        request,
        _("Probe of %(channel)s: %(verdict)s%(latency)s (routing: %(routing)s).")
        % {
            "channel": channel.name,
            "verdict": result.verdict,
            "latency": f", {result.latency_ms} ms" if getattr(result, "latency_ms", None) is not None else "",
            "routing": outcome.routing,
        },
    )
    return redirect("groups:channel", pk=pk)


# ---- models and prices ---------------------------------------------------------------------


@staff_required
def models_list(request):
    filt = ModelFilter(request.GET, queryset=Model.objects.all())
    page = paginate(request, filt.qs)
    return render_list(request, "ops/models.html", {"filter": filt, "page": page})


def _preview_rows(model: Model) -> list[dict]:
    """The final price of a model in every enabled token group (base multipliers, no bonus)."""
    offering = {g.pk for g in serving_token_groups(model_name=model.name)} if model.name else set()
    rows = []
    for group in TokenGroup.objects.filter(enabled=True):
        explanation = _list_price(model, group)
        rows.append({"group": group, "offers": group.pk in offering, "explanation": explanation})
    return rows


@staff_required
def model_edit(request, pk: int | None = None):
    model = get_object_or_404(Model, pk=pk) if pk else None
    initial = {f: getattr(model, f) for f in ModelForm.FIELDS} if model else {"enabled": True}
    form = ModelForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {f: form.cleaned_data[f] for f in ModelForm.FIELDS}
        price_changed = model is not None and any(data[f] != getattr(model, f) for f in PRICE_FIELDS)
        if price_changed and request.POST.get("confirm") != "1":
            after = form.unsaved(model)
            groups = serving_token_groups(model_name=model.name) or list(
                TokenGroup.objects.filter(enabled=True)
            )
            pairs = [(g.name, _list_price(model, g), _list_price(after, g)) for g in groups]
            return _confirm(
                request,
                title=_("Change the prices of %(model)s?") % {"model": model.name},
                intro=_("Official USD prices change; the final RMB prices in every group that offers it:"),
                rows=_price_rows(pairs),
                back=request.path,
            )
        try:
            model = model_save(actor=request.user, model=model, **data)
        except ValidationError as exc:
            _service_errors(form, exc)
        else:
            messages.success(request, _("Model %(name)s saved.") % {"name": model.name})
            return redirect("groups:model", pk=model.pk)
    preview_model = form.unsaved(model) if form.is_bound and form.is_valid() else (model or Model())
    context = {"model": model, "form": form, "preview": _preview_rows(preview_model)}
    return render(request, "ops/model_edit.html", context)


@staff_required
@require_POST
def model_preview(request, pk: int | None = None):
    """htmx: final prices in every group for the prices being typed, nothing saved."""
    model = get_object_or_404(Model, pk=pk) if pk else None
    form = ModelForm(request.POST)
    preview = _preview_rows(form.unsaved(model)) if form.is_valid() else []
    return render(request, "ops/model_edit.html#preview", {"form": form, "preview": preview, "model": model})
