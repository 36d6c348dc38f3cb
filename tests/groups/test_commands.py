from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billing.models import Wallet
from groups.models import Channel, Model, TokenGroup
from tokens.keys import hash_key
from tokens.models import Token


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_seed_demo_is_idempotent(demo):
    counts = (
        TokenGroup.objects.count(),
        Model.objects.count(),
        Channel.objects.count(),
        Token.objects.count(),
    )
    balance = Wallet.objects.get(user__username="demo").balance_micro
    run("seed_demo")
    assert counts == (
        TokenGroup.objects.count(),
        Model.objects.count(),
        Channel.objects.count(),
        Token.objects.count(),
    )
    assert Wallet.objects.get(user__username="demo").balance_micro == balance


def test_seed_demo_matches_the_guide(demo):
    cc = TokenGroup.objects.get(name="ClaudeCode")
    assert str(cc.multiplier) == "0.9500" and set(cc.api_formats) == {"openai", "anthropic"}
    assert TokenGroup.objects.get(name="Claude_Enterprise").fallback_only
    sora = Channel.objects.get(name="sora")
    assert list(sora.token_groups.values_list("name", flat=True)) == ["Sora2Official"]
    assert sora.base_url.endswith("/u/sora/v1")
    assert sora.api_key == "sim-sora-key"
    claude_cc = Channel.objects.filter(token_groups__name="ClaudeCode", kind="anthropic").order_by(
        "-priority"
    )
    assert [c.name for c in claude_cc] == ["claude-official", "claude-aws"]
    demo_user = Token.objects.get(key_hash=hash_key(demo["demo_key"])).user
    assert demo_user.user_group.name == "vip"


def test_createtoken_prints_only_the_key(demo):
    out = run("createtoken", "demo", "--group", "ClaudeCode", "--fallback", "Default", "--quota-cny", "12.5")
    assert out.startswith("sk-") and "\n" not in out
    token = Token.objects.get(key_hash=hash_key(out))
    assert token.quota_micro == 12_500_000
    assert [f.group.name for f in token.fallbacks.all()] == ["Default"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--group", "Default"], "unknown user"),
        (["demo", "--group", "Nope"], "unknown token group"),
        (["demo", "--group", "Claude_Enterprise"], "may not select"),
        (["demo", "--group", "Default", "--fallback", "Default"], "different group"),
        (["demo", "--group", "Default", "--quota-cny", "lots"], "not a number"),
    ],
)
def test_createtoken_errors_are_clear(demo, args, message):
    with pytest.raises(CommandError, match=message):
        run("createtoken", *args)


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
