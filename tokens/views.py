"""Console pages for a user's tokens. Every query is scoped to the signed-in user."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.console import paginate, render_list
from groups.models import TokenGroup
from groups.selectors import (
    effective_multiplier,
    fallback_token_groups,
    models_by_group,
    selectable_token_groups,
    token_callable_models,
)

from .examples import code_examples, example_models, public_base_url
from .filters import TokenFilter
from .forms import TokenForm
from .models import BILLING_MODE_HELP, Token, TokenFallback
from .services import token_create, token_delete, token_roll_key, token_update

SESSION_KEY = "revealed_keys"


def _get_token(request, pk: int) -> Token:
    """The token if it belongs to the signed-in user; anybody else gets a 404."""
    return get_object_or_404(
        Token.objects.select_related("select_group", "user__user_group"), pk=pk, user=request.user
    )


def _tokens(user):
    fallbacks = TokenFallback.objects.select_related("group").order_by("position")
    return (
        Token.objects.filter(user=user)
        .select_related("select_group")
        .prefetch_related(Prefetch("fallbacks", queryset=fallbacks))
    )


def _remember_key(request, token: Token, raw: str) -> None:
    """Keep a new raw key in the session until the token page has shown it once."""
    keys = request.session.get(SESSION_KEY, {})
    keys[str(token.pk)] = raw
    request.session[SESSION_KEY] = keys


def _pop_key(request, token: Token) -> str | None:
    keys = request.session.get(SESSION_KEY, {})
    raw = keys.pop(str(token.pk), None)
    if raw is not None:
        request.session[SESSION_KEY] = keys
    return raw


@login_required
def token_list(request):
    filt = TokenFilter(request.GET, queryset=_tokens(request.user))
    names = selectable_token_groups(user_group=request.user.user_group, user=request.user).values_list(
        "name", flat=True
    )
    filt.form.fields["select_group"] = forms.ChoiceField(
        required=False, label=_("Select group"), choices=[("", _("any")), *[(n, n) for n in names]]
    )
    context = {"filter": filt, "page": paginate(request, filt.qs)}
    return render_list(request, "tokens/list.html", context)


def _group_panel(user, select_group_id, chosen_ids: list[int], order: list[int] = ()) -> dict:
    """Data for the select-group summary and the ordered fallback list of the form. Groups
    with no model or no enabled channel are never offered (the current select group of a
    token being edited stays, so saving does not silently change it)."""
    user_group = user.user_group
    ug_id = user_group.pk if user_group else None
    selectable = list(selectable_token_groups(user_group=user_group, user=user).distinct())
    candidates = list(fallback_token_groups(user_group=user_group, user=user).distinct())
    offered = models_by_group(group_ids=[g.pk for g in {*selectable, *candidates}])
    selectable = [g for g in selectable if g.pk in offered or g.pk == select_group_id]
    candidates = [g for g in candidates if g.pk in offered or g.pk in chosen_ids]
    select = next((g for g in selectable if g.pk == select_group_id), None)
    if select is None and select_group_id:
        select = TokenGroup.objects.filter(pk=select_group_id).first()
    if select is None and selectable:
        select = selectable[0]
    select_models = set(offered.get(select.pk, [])) if select else set()
    by_id = {g.pk: g for g in candidates}
    ordered = [by_id[i] for i in chosen_ids if i in by_id]
    if order:
        ordered = [by_id[i] for i in order if i in by_id]
    ordered += [g for g in candidates if g not in ordered]
    items = []
    for g in ordered:
        if select is not None and g.pk == select.pk:
            continue
        models = offered.get(g.pk, [])
        items.append(
            {
                "group": g,
                "checked": g.pk in chosen_ids,
                "multiplier": effective_multiplier(token_group=g, user_group_id=ug_id),
                "models": models,
                "shared": sorted(select_models & set(models)),
                "flagged": bool(select_models) and not (select_models & set(models)),
            }
        )
    return {
        "select": select,
        "select_multiplier": effective_multiplier(token_group=select, user_group_id=ug_id)
        if select
        else None,
        "select_models": sorted(select_models),
        "fallback_items": items,
        "catalog": [
            {
                "group": g,
                "multiplier": effective_multiplier(token_group=g, user_group_id=ug_id),
                "models": offered.get(g.pk, []),
            }
            for g in selectable
        ],
    }


def _int_list(values) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            continue
    return out


def _moved(data) -> tuple[list[int], list[int]]:
    """No-JS reordering: the fallback order after an "up:<id>" / "down:<id>" button press, and
    the checked groups in that order."""
    order = _int_list(data.getlist("fallback_order"))
    direction, _sep, raw = data.get("move", "").partition(":")
    moved = _int_list([raw])
    if moved and moved[0] in order:
        i = order.index(moved[0])
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
    checked = set(_int_list(data.getlist("fallback_groups")))
    return order, [pk for pk in order if pk in checked]


def _render_form(request, form: TokenForm, token: Token | None, status: int = 200, order=()):
    if form.is_bound:
        select_id = _int_list([form.data.get("select_group")])
        chosen = _int_list(form.data.getlist("fallback_groups"))
    else:
        select_id = _int_list([form.initial.get("select_group")])
        chosen = list(form.initial.get("fallback_groups") or [])
    context = {
        "form": form,
        "token": token,
        "billing_help": BILLING_MODE_HELP,
        "max_fallbacks": settings.TOKEN_MAX_FALLBACK_GROUPS,
        **_group_panel(request.user, select_id[0] if select_id else None, chosen, order),
    }
    template = "tokens/form.html"
    if request.htmx:
        template += "#formhost" if request.method == "POST" else "#dialog"
    return render(request, template, context, status=status)


def _reorder(request, token: Token | None):
    """The form again, unsaved, with one fallback group moved (the up/down buttons without JS)."""
    order, chosen = _moved(request.POST)
    fields = (
        "name",
        "select_group",
        "billing_mode",
        "quota",
        "expires_at",
        "model_allowlist",
        "ip_allowlist",
    )
    initial = {name: request.POST.get(name, "") for name in fields}
    initial["fallback_groups"] = chosen
    form = TokenForm(user=request.user, token=token, initial=initial)
    return _render_form(request, form, token, order=order)


@login_required
def token_create_view(request):
    if request.method == "POST" and request.POST.get("move"):
        return _reorder(request, None)
    if request.method == "POST":
        form = TokenForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                token, raw = token_create(user=request.user, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                _remember_key(request, token, raw)
                messages.success(
                    request,
                    _("Token “%(name)s” created. Copy its key now: it is shown once.") % {"name": token.name},
                )
                return _done(request, token)
    else:
        group = request.GET.get("group")
        initial = {"name": "", "fallback_groups": []}
        if group:
            chosen = (
                selectable_token_groups(user_group=request.user.user_group, user=request.user)
                .filter(name=group)
                .first()
            )
            if chosen:
                initial["select_group"] = chosen.pk
        form = TokenForm(user=request.user, initial=initial)
    return _render_form(request, form, None)


def _done(request, token: Token):
    url = reverse("tokens:detail", args=[token.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
def token_edit(request, pk: int):
    token = _get_token(request, pk)
    if request.method == "POST" and request.POST.get("move"):
        return _reorder(request, token)
    if request.method == "POST":
        form = TokenForm(request.POST, user=request.user, token=token)
        if form.is_valid():
            kwargs = form.service_kwargs()
            if "expires_at" not in form.changed_data:
                kwargs.pop("expires_at")
            try:
                token_update(token=token, **kwargs)
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Token “%(name)s” saved.") % {"name": token.name})
                return _done(request, token)
    else:
        form = TokenForm(user=request.user, token=token)
    return _render_form(request, form, token)


@login_required
def token_form_groups(request):
    """htmx: the select-group summary and fallback list for the group just chosen."""
    form = TokenForm(request.GET, user=request.user)
    select_id = _int_list([request.GET.get("select_group")])
    chosen = _int_list(request.GET.getlist("fallback_groups"))
    context = {
        "form": form,
        "max_fallbacks": settings.TOKEN_MAX_FALLBACK_GROUPS,
        **_group_panel(request.user, select_id[0] if select_id else None, chosen),
    }
    return render(request, "tokens/form.html#groups", context)


@login_required
def token_detail(request, pk: int):
    token = _get_token(request, pk)
    raw = _pop_key(request, token)
    openai_model, anthropic_model = example_models(token=token)
    base = public_base_url(request)
    fallbacks = [f.group for f in token.fallbacks.select_related("group")]
    context = {
        "token": token,
        "raw_key": raw,
        "fallbacks": fallbacks,
        "billing_help": BILLING_MODE_HELP.get(token.billing_mode, ""),
        "callable_models": token_callable_models(token=token),
        "example_model": openai_model,
        "base_url": base,
        "examples": code_examples(base=base, key=raw, model=openai_model, anthropic_model=anthropic_model)
        if openai_model
        else [],
        "multiplier": effective_multiplier(
            token_group=token.select_group, user_group_id=request.user.user_group_id
        ),
    }
    return render(request, "tokens/detail.html", context)


@login_required
@require_POST
def token_roll(request, pk: int):
    token = _get_token(request, pk)
    raw = token_roll_key(token=token)
    _remember_key(request, token, raw)
    messages.warning(request, _("The old key stopped working. Copy the new key now: it is shown once."))
    return _done(request, token)


@login_required
@require_POST
def token_toggle(request, pk: int):
    token = _get_token(request, pk)
    token_update(token=token, enabled=not token.enabled)
    done = _("Token “%(name)s” enabled.") if not token.enabled else _("Token “%(name)s” disabled.")
    messages.success(request, done % {"name": token.name})
    return _done(request, token)


@login_required
@require_POST
def token_delete_view(request, pk: int):
    """Deleting a token kills its key for good, so a plain POST only asks; the confirm step acts."""
    token = _get_token(request, pk)
    name = token.name
    if request.POST.get("confirm") != "1":
        context = {
            "title": _("Delete token “%(name)s”?") % {"name": name},
            "lines": [_("Its key stops working at once and cannot be restored; its usage history stays.")],
            "hidden": [],
            "button": _("Yes, delete the token"),
            "back": reverse("tokens:detail", args=[token.pk]),
        }
        return render(request, "console/confirm_action.html", context)
    token_delete(token=token)
    messages.success(request, _("Token “%(name)s” deleted; its key no longer works.") % {"name": name})
    url = reverse("tokens:list")
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
