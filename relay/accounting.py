"""What a call may cost (the hold) and what it did cost (the charge): pure, Decimal only."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.pricing import BillingBasis, Charge, Usage, billing_basis, price_call
from groups.routing import ModelInfo

from .convert.usage import estimate_tokens


@dataclass(frozen=True)
class HoldEstimate:
    amount_micro: int
    usage: Usage
    basis: str


def hold_estimate(
    *,
    model: ModelInfo,
    billing_mode: str,
    multiplier: Decimal,
    usd_cny_rate: Decimal,
    prompt_chars: int = 0,
    max_tokens: int | None = None,
    seconds: Decimal | None = None,
    images: int = 1,
) -> HoldEstimate:
    """The most this call should cost: the prompt, plus max_tokens (or the model's cap) of output."""
    basis = billing_basis(model.price, billing_mode)
    if basis == BillingBasis.TOKENS:
        usage = Usage(
            input_tokens=estimate_tokens(prompt_chars),
            output_tokens=max_tokens if max_tokens else model.max_output_tokens,
        )
    elif basis == BillingBasis.SECONDS:
        usage = Usage(seconds=seconds or Decimal(0))
    elif basis == BillingBasis.IMAGES:
        usage = Usage(images=images)
    else:
        usage = Usage(calls=images)
    charge = price_call(
        model.price, usage, multiplier=multiplier, usd_cny_rate=usd_cny_rate, billing_mode=billing_mode
    )
    return HoldEstimate(charge.cost_micro, usage, basis)


def charge_for(
    *, model: ModelInfo, usage: Usage, billing_mode: str, multiplier: Decimal, usd_cny_rate: Decimal
) -> Charge:
    return price_call(
        model.price, usage, multiplier=multiplier, usd_cny_rate=usd_cny_rate, billing_mode=billing_mode
    )


def estimated_usage(*, prompt_chars: int, output_chars: int) -> Usage:
    """Usage when the upstream reported none: what was sent, and what came back so far."""
    return Usage(input_tokens=estimate_tokens(prompt_chars), output_tokens=estimate_tokens(output_chars))


def usage_fields(usage: Usage) -> dict:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "seconds": usage.seconds,
        "images": usage.images,
    }
