"""`recharge USER AMOUNT`: applies the bonus tiers, prints the balance, refuses clearly."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import Wallet


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_recharge_applies_bonus_and_prints_balance(demo):
    before = Wallet.objects.get(user__username="demo").balance_micro
    out = run("recharge", "demo", "1000")
    assert out == f"{(before + 1_100_000_000) / 1_000_000:.6f}"


@pytest.mark.parametrize(
    ("args", "message"), [(["nobody", "5"], "unknown user"), (["demo", "x"], "not a number")]
)
def test_recharge_errors_are_clear(demo, args, message):
    with pytest.raises(CommandError, match=message):
        run("recharge", *args)


def test_recharge_refuses_non_positive(demo):
    for amount in ("0", "-5", "NaN", "Infinity"):
        with pytest.raises(CommandError):
            run("recharge", "demo", amount)
