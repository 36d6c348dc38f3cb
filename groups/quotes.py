"""Price explanations shown by the console and the API alike.

Nobody should have to interpret a multiplier: every unit price comes with its RMB
figure, its USD equivalent, the official USD price and the ratio to it, bonus included.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_noop

from core.pricing import ModelPrice, Usage, explain_ratio, price_call, ratio_to_official, unit_price_cny

from .models import Model, TokenGroup
from .routing import get_snapshot
from .selectors import effective_multiplier

# Labels are msgids: the console translates them where it shows them (the API keeps English).
UNITS = (
    ("input_usd_per_mtok", "input", gettext_noop("1M input tokens")),
    ("output_usd_per_mtok", "output", gettext_noop("1M output tokens")),
    ("cache_read_usd_per_mtok", "cache_read", gettext_noop("1M cache-read tokens")),
    ("cache_write_usd_per_mtok", "cache_write", gettext_noop("1M cache-write tokens")),
    ("usd_per_call", "call", gettext_noop("call")),
    ("usd_per_second", "second", gettext_noop("second of video")),
    ("usd_per_image", "image", gettext_noop("image")),
)


def _q(value: Decimal, places: str = "0.000001") -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class UnitPrice:
    unit: str
    label: str
    official_usd: Decimal
    final_cny: Decimal
    final_usd_equivalent: Decimal

    def as_dict(self) -> dict:
        return {
            "unit": self.unit,
            "label": self.label,
            "official_usd": str(self.official_usd),
            "final_cny": str(self.final_cny),
            "final_usd_equivalent": str(self.final_usd_equivalent),
        }


@dataclass(frozen=True)
class PriceExplanation:
    model: str
    group: str
    multiplier: Decimal
    usd_cny_rate: Decimal
    bonus_percent: Decimal
    ratio_to_official: Decimal
    sentence: str
    units: tuple[UnitPrice, ...]

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "group": self.group,
            "multiplier": str(self.multiplier),
            "usd_cny_rate": str(self.usd_cny_rate),
            "bonus_percent": str(self.bonus_percent),
            "ratio_to_official": str(_q(self.ratio_to_official, "0.0001")),
            "sentence": self.sentence,
            "units": [u.as_dict() for u in self.units],
        }


def explain_price(
    *, model: Model, group: TokenGroup, user_group_id: int | None, bonus_percent: Decimal
) -> PriceExplanation:
    """At the USD/CNY rate the relay charges at (the routing snapshot's); the bonus is the
    caller's to know (billing's recharge tiers)."""
    multiplier = effective_multiplier(token_group=group, user_group_id=user_group_id)
    rate = get_snapshot().usd_cny_rate
    bonus = bonus_percent
    units = []
    for field, unit, label in UNITS:
        usd = getattr(model, field)
        if usd is None:
            continue
        cny = unit_price_cny(usd, multiplier=multiplier, usd_cny_rate=rate)
        units.append(UnitPrice(unit, label, usd, _q(cny), _q(usd * multiplier)))
    return PriceExplanation(
        model=model.name,
        group=group.name,
        multiplier=multiplier,
        usd_cny_rate=rate,
        bonus_percent=bonus,
        ratio_to_official=ratio_to_official(multiplier, bonus),
        sentence=explain_ratio(multiplier, bonus),
        units=tuple(units),
    )


def quote_usage(
    *,
    model: Model,
    group: TokenGroup,
    user_group_id: int | None,
    billing_mode: str,
    usage: Usage,
    bonus_percent: Decimal,
) -> dict:
    """Cost of a hypothetical call, with the same explanation as the price table."""
    explanation = explain_price(
        model=model, group=group, user_group_id=user_group_id, bonus_percent=bonus_percent
    )
    charge = price_call(
        ModelPrice.of(model),
        usage,
        multiplier=explanation.multiplier,
        usd_cny_rate=explanation.usd_cny_rate,
        billing_mode=billing_mode,
    )
    return {**explanation.as_dict(), "charge": charge.as_dict()}
