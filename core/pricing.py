"""Pricing engine: pure functions, Decimal only, one half-up rounding per charge.

charge (RMB) = units × official USD list price × usd_cny_rate × group multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext as _

MICRO = Decimal(1_000_000)
MTOK = Decimal(1_000_000)
# Upper bound for any single money amount: ¥10,000,000.
MAX_AMOUNT_MICRO = 10_000_000 * 1_000_000

TOKEN_PRICES = ("input", "output", "cache_read", "cache_write")


class BillingBasis:
    TOKENS = "tokens"
    SECONDS = "seconds"
    IMAGES = "images"
    CALL = "call"

    METERED = (TOKENS, SECONDS, IMAGES)


@dataclass(frozen=True)
class ModelPrice:
    """Official USD list prices of a model; None where a price does not apply."""

    input_usd_per_mtok: Decimal | None = None
    output_usd_per_mtok: Decimal | None = None
    cache_read_usd_per_mtok: Decimal | None = None
    cache_write_usd_per_mtok: Decimal | None = None
    usd_per_call: Decimal | None = None
    usd_per_second: Decimal | None = None
    usd_per_image: Decimal | None = None

    @classmethod
    def of(cls, model) -> ModelPrice:
        return cls(**{name: getattr(model, name) for name in cls.__dataclass_fields__})

    def metered_basis(self) -> str | None:
        if self.input_usd_per_mtok is not None or self.output_usd_per_mtok is not None:
            return BillingBasis.TOKENS
        if self.usd_per_second is not None:
            return BillingBasis.SECONDS
        if self.usd_per_image is not None:
            return BillingBasis.IMAGES
        return None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    seconds: Decimal = Decimal(0)
    images: int = 0
    calls: int = 1


@dataclass(frozen=True)
class PriceLine:
    label: str
    units: Decimal
    unit: str
    usd_per_unit: Decimal
    cny: Decimal

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "units": str(self.units),
            "unit": self.unit,
            "usd_per_unit": str(self.usd_per_unit),
            "cny": str(self.cny),
        }


@dataclass(frozen=True)
class Charge:
    basis: str
    cost_micro: int
    multiplier: Decimal
    usd_cny_rate: Decimal
    lines: tuple[PriceLine, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {
            "basis": self.basis,
            "multiplier": str(self.multiplier),
            "usd_cny_rate": str(self.usd_cny_rate),
            "lines": [line.as_dict() for line in self.lines],
            "cost_cny": format_cny(self.cost_micro),
        }


class PricingError(ValueError):
    """The model has no price that fits the token's billing mode."""


def billing_basis(price: ModelPrice, mode: str) -> str:
    """Which price a call is billed by under a token billing mode, or PricingError."""
    metered = price.metered_basis()
    per_call = BillingBasis.CALL if price.usd_per_call is not None else None
    order = {
        "usage": (metered,),
        "call": (per_call,),
        "usage_first": (metered, per_call),
        "call_first": (per_call, metered),
    }.get(mode)
    if order is None:
        raise PricingError(f"unknown billing mode {mode!r}")
    for basis in order:
        if basis is not None:
            return basis
    raise PricingError(f"the model has no price for billing mode {mode!r}")


def fits_billing_mode(price: ModelPrice, mode: str) -> bool:
    try:
        billing_basis(price, mode)
    except PricingError:
        return False
    return True


def to_micro(cny: Decimal) -> int:
    """Round RMB to whole micro-yuan, half up: the only rounding in a charge."""
    return int((cny * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cny_to_micro(amount: Decimal | str | int) -> int:
    return to_micro(Decimal(str(amount)))


def format_cny(micro: int) -> str:
    return f"{(Decimal(micro) / MICRO).quantize(Decimal('0.000001'))}"


def _lines(price: ModelPrice, usage: Usage, basis: str) -> list[tuple[str, Decimal, str, Decimal]]:
    if basis == BillingBasis.TOKENS:
        items = []
        for kind in TOKEN_PRICES:
            usd = getattr(price, f"{kind}_usd_per_mtok")
            count = getattr(usage, f"{kind}_tokens")
            if count and usd is None and kind.startswith("cache"):
                usd = price.input_usd_per_mtok  # no cache price listed: billed as input
            if count and usd is not None:
                items.append((f"{kind} tokens", Decimal(count) / MTOK, "1M tokens", usd))
        return items
    if basis == BillingBasis.SECONDS:
        return [("video seconds", Decimal(usage.seconds), "second", _listed(price.usd_per_second))]
    if basis == BillingBasis.IMAGES:
        return [("images", Decimal(usage.images), "image", _listed(price.usd_per_image))]
    return [("calls", Decimal(usage.calls), "call", _listed(price.usd_per_call))]


def _listed(usd: Decimal | None) -> Decimal:
    """The price of the basis `billing_basis` chose, which it chose because the price is set."""
    if usd is None:
        raise PricingError("the chosen billing basis has no price")
    return usd


def price_call(
    price: ModelPrice,
    usage: Usage,
    *,
    multiplier: Decimal,
    usd_cny_rate: Decimal,
    billing_mode: str,
) -> Charge:
    """Cost of one call in micro-yuan, with the lines that explain it."""
    basis = billing_basis(price, billing_mode)
    factor = usd_cny_rate * multiplier
    lines = tuple(
        PriceLine(label, units, unit, usd, units * usd * factor)
        for label, units, unit, usd in _lines(price, usage, basis)
    )
    total = sum((line.cny for line in lines), Decimal(0))
    return Charge(basis, to_micro(total), multiplier, usd_cny_rate, lines)


def unit_price_cny(usd_per_unit: Decimal, *, multiplier: Decimal, usd_cny_rate: Decimal) -> Decimal:
    """Final RMB price of one unit (1M tokens, call, second, image) in a group."""
    return usd_per_unit * usd_cny_rate * multiplier


def ratio_to_official(multiplier: Decimal, bonus_percent: Decimal = Decimal(0)) -> Decimal:
    """What a unit really costs relative to the official USD price: multiplier ÷ (1 + bonus)."""
    return multiplier / (1 + bonus_percent / 100)


def explain_ratio(multiplier: Decimal, bonus_percent: Decimal = Decimal(0)) -> str:
    """The plain sentence the console shows next to every price, in the reader's language."""
    m = f"{multiplier.normalize():f}"
    if not bonus_percent:
        return _("%(m)s × official price (%(pct)s of official)") % {"m": m, "pct": percent(multiplier)}
    effective = percent(ratio_to_official(multiplier, bonus_percent))
    return _("%(m)s × official price, ≈ %(pct)s of official after your %(bonus)s%% recharge bonus") % {
        "m": m,
        "pct": effective,
        "bonus": f"{bonus_percent.normalize():f}",
    }


def percent(ratio: Decimal) -> str:
    return f"{(ratio * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"
