"""Template helpers for the console: money formatting and query-string building."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

register = template.Library()

MICRO = Decimal(1_000_000)


def _group(value: Decimal, places: int) -> str:
    q = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{q:,.{places}f}"


def _signed(symbol: str, value: Decimal, places: int) -> str:
    """'-¥1.50', never '¥-1.50': the sign leads, as in every bank statement."""
    text = _group(value, places)
    return f"-{symbol}{text[1:]}" if text.startswith("-") else f"{symbol}{text}"


@register.filter
def yuan(micro, places=2):
    """Micro-yuan as '¥1,234.56' (places=6 for per-call costs)."""
    if micro in (None, ""):
        return "—"
    return _signed("¥", Decimal(int(micro)) / MICRO, int(places))


@register.filter
def cny(value, places=6):
    """A Decimal RMB amount, trailing zeros kept to `places` for tables of unit prices."""
    if value in (None, ""):
        return "—"
    return _signed("¥", Decimal(str(value)), int(places))


@register.filter
def usd(value, places=4):
    if value in (None, ""):
        return "—"
    return _signed("$", Decimal(str(value)), int(places))


@register.filter
def pct(ratio, places=0):
    if ratio in (None, ""):
        return "—"
    return f"{_group(Decimal(str(ratio)) * 100, int(places))}%"


@register.filter
def mult(value):
    """A multiplier without trailing zeros: 0.95×."""
    if value in (None, ""):
        return "—"
    return f"{Decimal(str(value)).normalize():f}×"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.simple_tag(takes_context=True)
def qs(context, **changes):
    """The current query string with some keys replaced (None or '' removes a key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    if "page" not in changes:
        params.pop("page", None)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def sort_link(context, field):
    """Link that sorts a list by `field`, toggling direction when already sorted by it."""
    current = context["request"].GET.get("ordering", "")
    value = f"-{field}" if current == field else field
    return qs(context, ordering=value)


@register.simple_tag(takes_context=True)
def sort_mark(context, field):
    current = context["request"].GET.get("ordering", "")
    return "▲" if current == field else "▼" if current == f"-{field}" else ""


# A price line's unit as stored on the usage record → how a person counts it.
_PLAIN_UNITS = {
    "1M tokens": (1_000_000, lambda n: ngettext("%(n)s token", "%(n)s tokens", n)),
    "second": (1, lambda n: ngettext("%(n)s second", "%(n)s seconds", n)),
    "image": (1, lambda n: ngettext("%(n)s image", "%(n)s images", n)),
    "call": (1, lambda n: ngettext("%(n)s call", "%(n)s calls", n)),
}


@register.filter
def plain_units(line):
    """'1,234 tokens', not '0.001234 × 1M tokens'."""
    scale, words = _PLAIN_UNITS.get(line.get("unit"), (None, None))
    if scale is None:
        return f"{line.get('units')} × {line.get('unit')}"
    count = Decimal(str(line.get("units"))) * scale
    n = int(count) if count == count.to_integral_value() else count.normalize()
    return words(n) % {"n": f"{n:,}"}


@register.filter
def per_unit(line):
    """The official price's unit: '/ 1M tokens', '/ second'."""
    labels = {
        "1M tokens": _("per 1M tokens"),
        "second": _("per second"),
        "image": _("per image"),
        "call": _("per call"),
    }
    return labels.get(line.get("unit"), line.get("unit"))


@register.filter
def price_line_label(label):
    labels = {
        "input tokens": _("input tokens"),
        "output tokens": _("output tokens"),
        "cache_read tokens": _("cache read tokens"),
        "cache_write tokens": _("cache write tokens"),
        "video seconds": _("video seconds"),
        "images": _("images"),
        "calls": _("calls"),
    }
    return labels.get(label, label)


@register.filter
def billing_basis_label(basis):
    labels = {
        "tokens": _("tokens"),
        "seconds": _("seconds of video"),
        "images": _("images"),
        "call": _("calls"),
    }
    return labels.get(basis, basis)


@register.filter
def status_badge(status):
    """The badge class of a call's status: ok, bad for an error, warn for partial or pending."""
    return {"success": "ok", "error": "bad"}.get(status, "warn")
