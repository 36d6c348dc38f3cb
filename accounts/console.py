"""Small helpers shared by the console views: access checks, paging, htmx partials."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext as _

PAGE_SIZE = 25


def staff_required(view):
    """Operator pages: anonymous users go to the login page, customers get 403."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied(_("Operator pages are for staff only."))
        return view(request, *args, **kwargs)

    return wrapper


def paginate(request, queryset, per_page: int = PAGE_SIZE):
    """One page of a list; a bad page number shows the nearest valid page instead of failing."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def _friendly(form) -> None:
    """Filter forms read 'any' instead of '---------' / 'Unknown', and their ids never clash
    with a form opened in a dialog."""
    from django import forms

    form.auto_id = "filter_%s"
    labels = {"date_from": _("From"), "date_to": _("Until"), "ordering": _("Sort by")}
    for name, field in form.fields.items():
        if name in labels:
            field.label = labels[name]
        widget = field.widget
        if isinstance(widget, forms.NullBooleanSelect):
            widget.choices = [("unknown", _("any")), ("true", _("yes")), ("false", _("no"))]
        elif str(getattr(field, "empty_label", "") or "").startswith("---"):
            field.empty_label = _("default") if name == "ordering" else _("any")
            widget.choices = list(field.choices)
        elif isinstance(field, forms.ChoiceField):
            # the stubs type the getter like the setter (callable too); reading gives the choices
            choices = list(field.choices)  # type: ignore[arg-type]
            if choices and choices[0][0] == "" and str(choices[0][1]).startswith("---"):
                field.choices = [("", _("any")), *choices[1:]]
    form._bound_fields_cache.clear()  # labels are copied into bound fields when first used


def render_list(request, template: str, context: dict, partial: str = "results"):
    """Full page, or just the results partial when htmx asks for it (filters, paging, sorting)."""
    if "filter" in context:
        _friendly(context["filter"].form)
    if request.htmx and not request.htmx.boosted and request.htmx.target == partial:
        template = f"{template}#{partial}"
    return render(request, template, context)
