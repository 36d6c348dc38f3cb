"""`seed_demo`: the guide's groups, channels and demo user, idempotently."""

from io import StringIO

from django.core.management import call_command

from billing.models import Wallet
from core.keys import hash_key
from groups.models import Channel, Model, TokenGroup
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
