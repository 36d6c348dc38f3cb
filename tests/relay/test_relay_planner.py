"""Planning from the routing snapshot: group order, permissions, 404/403 messages, multipliers."""

import random
from decimal import Decimal

import pytest

from groups.models import Channel, GroupAccess, TokenGroup
from groups.policy import callable_models
from groups.routing import get_snapshot
from groups.saturation import cooldown_start, inflight_acquire, verdict_set
from relay.auth import load_token
from relay.errors import RelayError
from relay.planner import plan_route
from relay.router import order_channels
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def token_info(user, select, fallbacks=(), **kwargs):
    token, _ = token_create(user=user, name="t", select_group=select, fallback_groups=fallbacks, **kwargs)
    return load_token(token.key_hash)


def plan(info, model, family="chat", api_format="openai"):
    return plan_route(
        snapshot=get_snapshot(), token=info, model_name=model, family=family, api_format=api_format
    )


def test_plan_is_select_group_then_fallbacks_with_their_multipliers(make_user, groups, user_groups):
    info = token_info(make_user(user_groups["default"]), groups["ClaudeCode"], [groups["Default"]])
    result = plan(info, "claude-sonnet-4-5")
    assert [(s.group.name, s.multiplier, s.fallback) for s in result.steps] == [
        ("ClaudeCode", Decimal("0.95"), False),
        ("Default", Decimal("1.0"), True),
    ]
    assert [c.name for c in result.steps[0].channels] == ["claude-official", "claude-aws"]
    assert result.max_multiplier == Decimal("1.0")


def test_groups_not_offering_the_model_are_dropped(make_user, groups, user_groups):
    info = token_info(make_user(user_groups["default"]), groups["ClaudeCode"], [groups["Default"]])
    assert [s.group.name for s in plan(info, "gpt-5.1").steps] == ["Default"]


def test_404_names_token_groups_and_the_groups_offering_it(make_user, groups, user_groups):
    info = token_info(make_user(user_groups["default"]), groups["Default"])
    with pytest.raises(RelayError) as exc:
        plan(info, "sora-2", family="videos")
    assert exc.value.status == 404 and exc.value.code == "model_not_found"
    assert "(Default)" in exc.value.message and "Sora2Official" in exc.value.message


def test_404_for_a_model_only_an_enterprise_group_offers_is_not_leaked(make_user, groups, user_groups):
    Channel.objects.get(name="claude-default").token_groups.remove(groups["Default"])
    Channel.objects.get(name="claude-official").token_groups.remove(groups["ClaudeCode"])
    Channel.objects.get(name="claude-aws").token_groups.remove(groups["ClaudeCode"])
    info = token_info(make_user(user_groups["default"]), groups["Default"])
    with pytest.raises(RelayError) as exc:
        plan(info, "claude-sonnet-4-5")
    assert "Claude_Enterprise" not in exc.value.message
    assert "No group available to your account offers it" in exc.value.message


def test_fallback_only_group_is_never_used_as_select_group(make_user, groups, user_groups):
    user = make_user(user_groups["enterprise"])
    info = token_info(user, groups["Default"], [groups["Claude_Enterprise"]])
    assert [s.group.name for s in plan(info, "claude-sonnet-4-5").steps] == ["Default", "Claude_Enterprise"]
    TokenGroup.objects.filter(name="Default").update(fallback_only=True)
    TokenGroup.objects.get(name="Wan").save()  # bump the routing version
    assert [s.group.name for s in plan(info, "claude-sonnet-4-5").steps] == ["Claude_Enterprise"]


def test_revoked_group_access_is_refused_with_403(make_user, groups, user_groups):
    user = make_user(user_groups["default"])
    info = token_info(user, groups["Default"])
    GroupAccess.objects.filter(user_group=user_groups["default"], token_group=groups["Default"]).delete()
    with pytest.raises(RelayError) as exc:
        plan(info, "gpt-5.1")
    assert exc.value.status == 403


def test_multiplier_override_of_the_user_group_applies(make_user, groups, user_groups):
    GroupAccess.objects.filter(user_group=user_groups["default"], token_group=groups["Default"]).update(
        multiplier_override=Decimal("0.8")
    )
    TokenGroup.objects.get(name="Wan").save()
    info = token_info(make_user(user_groups["default"]), groups["Default"])
    assert plan(info, "gpt-5.1").steps[0].multiplier == Decimal("0.8")


def test_wrong_endpoint_for_a_video_model_is_a_400(make_user, groups, user_groups):
    info = token_info(make_user(user_groups["default"]), groups["Sora2Official"])
    with pytest.raises(RelayError) as exc:
        plan(info, "sora-2")
    assert exc.value.status == 400 and "/v1/videos" in exc.value.message


def test_models_list_respects_tiers_allowlist_and_formats(make_user, groups, user_groups):
    info = token_info(make_user(user_groups["default"]), groups["ClaudeCode"], [groups["Sora2Official"]])
    names = [name for name, _ in callable_models(get_snapshot(), info, "openai")]
    assert "claude-sonnet-4-5" in names and "sora-2" in names
    assert "claude-opus-4-6" not in names  # premium tier
    assert "sora-2" not in [name for name, _ in callable_models(get_snapshot(), info, "anthropic")]
    limited = token_info(make_user(user_groups["vip"]), groups["ClaudeCode"], model_allowlist=["glm-5.1"])
    assert [name for name, _ in callable_models(get_snapshot(), limited, "openai")] == ["glm-5.1"]


def test_router_orders_by_priority_and_skips_saturated_and_failing(groups):
    channels = get_snapshot().groups[groups["ClaudeCode"].pk].channels_for("claude-sonnet-4-5")
    official, aws = channels
    ordered = order_channels(channels, rng=random.Random(1))
    assert [c.name for c in ordered.ready] == ["claude-official", "claude-aws"]
    cooldown_start(official.id, 30)
    ordered = order_channels(channels)
    assert [c.name for c in ordered.ready] == ["claude-aws"] and ordered.saturated == [official]
    assert 28 < ordered.retry_after_s <= 30
    verdict_set(aws.id, "failing")
    ordered = order_channels(channels)
    assert ordered.ready == [] and ordered.unhealthy == [aws]


def test_router_counts_in_flight_against_max_concurrency(groups):
    Channel.objects.filter(name="claude-official").update(max_concurrency=1)
    Channel.objects.get(name="claude-aws").save()
    channels = get_snapshot().groups[groups["ClaudeCode"].pk].channels_for("claude-sonnet-4-5")
    assert inflight_acquire(channels[0].id, 1)
    assert [c.name for c in order_channels(channels).saturated] == ["claude-official"]


def test_weighted_random_within_a_priority(groups):
    Channel.objects.filter(name="claude-aws").update(priority=10, weight=3)
    Channel.objects.get(name="claude-official").save()
    channels = get_snapshot().groups[groups["ClaudeCode"].pk].channels_for("claude-sonnet-4-5")
    rng = random.Random(7)
    firsts = [order_channels(channels, rng=rng).ready[0].name for _ in range(400)]
    share = firsts.count("claude-aws") / len(firsts)
    assert 0.65 < share < 0.85  # weight 3 vs 1 → 75 %
