from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.pricing import (
    ModelPrice,
    PricingError,
    Usage,
    billing_basis,
    explain_ratio,
    percent,
    price_call,
    ratio_to_official,
    to_micro,
)

SONNET = ModelPrice(input_usd_per_mtok=D("3"), output_usd_per_mtok=D("15"), cache_read_usd_per_mtok=D("0.3"))
SORA = ModelPrice(usd_per_second=D("0.1"))
VEO = ModelPrice(usd_per_call=D("3.2"))
BOTH = ModelPrice(input_usd_per_mtok=D("1"), output_usd_per_mtok=D("2"), usd_per_call=D("0.01"))


def test_claudecode_with_20_percent_bonus_is_about_79_percent_of_official():
    ratio = ratio_to_official(D("0.95"), D("20"))
    assert percent(ratio) == "79%"
    assert explain_ratio(D("0.95"), D("20")) == (
        "0.95 × official price, ≈ 79% of official after your 20% recharge bonus"
    )


def test_token_charge_matches_hand_computation():
    usage = Usage(input_tokens=1000, output_tokens=500, cache_read_tokens=2000)
    charge = price_call(
        SONNET, usage, multiplier=D("0.95"), usd_cny_rate=D("7.2"), billing_mode="usage_first"
    )
    # (1000*3 + 500*15 + 2000*0.3) / 1e6 USD = 0.0111 USD; × 7.2 × 0.95 = 0.075924 CNY
    assert charge.cost_micro == 75924
    assert charge.basis == "tokens"
    assert [line.label for line in charge.lines] == ["input tokens", "output tokens", "cache_read tokens"]


def test_video_is_billed_per_second():
    charge = price_call(
        SORA, Usage(seconds=D("8")), multiplier=D("1"), usd_cny_rate=D("7.2"), billing_mode="usage_first"
    )
    assert charge.basis == "seconds"
    assert charge.cost_micro == 5_760_000


@pytest.mark.parametrize(
    ("price", "mode", "basis"),
    [
        (BOTH, "usage", "tokens"),
        (BOTH, "call", "call"),
        (BOTH, "usage_first", "tokens"),
        (BOTH, "call_first", "call"),
        (VEO, "usage_first", "call"),
        (SORA, "call_first", "seconds"),
    ],
)
def test_billing_modes_choose_the_basis(price, mode, basis):
    assert billing_basis(price, mode) == basis


@pytest.mark.parametrize(("price", "mode"), [(VEO, "usage"), (SORA, "call"), (BOTH, "bogus")])
def test_billing_mode_that_does_not_fit_is_refused(price, mode):
    with pytest.raises(PricingError):
        billing_basis(price, mode)


def test_rounding_is_half_up_once():
    assert to_micro(D("0.0000005")) == 1
    assert to_micro(D("0.00000049")) == 0


tokens = st.integers(min_value=0, max_value=2_000_000)
prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
mults = st.decimals(min_value=D("0.0001"), max_value=100, places=4)


@given(i=tokens, o=tokens, pin=prices, pout=prices, m=mults)
def test_charge_is_exact_and_monotonic(i, o, pin, pout, m):
    price = ModelPrice(input_usd_per_mtok=pin, output_usd_per_mtok=pout)
    rate = D("7.2")
    charge = price_call(
        price, Usage(input_tokens=i, output_tokens=o), multiplier=m, usd_cny_rate=rate, billing_mode="usage"
    )
    exact = (D(i) * pin + D(o) * pout) / D(1_000_000) * rate * m
    assert abs(D(charge.cost_micro) - exact * 1_000_000) <= D("0.5")
    more = price_call(
        price,
        Usage(input_tokens=i + 1, output_tokens=o),
        multiplier=m,
        usd_cny_rate=rate,
        billing_mode="usage",
    )
    assert more.cost_micro >= charge.cost_micro
    assert charge.cost_micro >= 0


@given(m=mults, bonus=st.decimals(min_value=0, max_value=100, places=2))
def test_ratio_never_exceeds_multiplier(m, bonus):
    assert ratio_to_official(m, bonus) <= m
