"""The routing policy's pure functions over a hand-built `RoutingSnapshot` (no database)."""

from decimal import Decimal as D

import pytest

from core.pricing import ModelPrice
from groups import policy
from groups.policy import Caller, Plan, Reason, Refusal
from groups.routing import AccessInfo, ChannelInfo, ModelInfo, RoutingSnapshot, TokenGroupInfo

UG = 10  # a user group allowed the standard tier
TOKENS = ModelPrice(input_usd_per_mtok=D("1"), output_usd_per_mtok=D("2"))
PER_CALL = ModelPrice(usd_per_call=D("0.1"))


def _channel(cid: int, kind: str = "openai") -> ChannelInfo:
    return ChannelInfo(cid, f"ch{cid}", kind, "http://up", "k", priority=0, weight=1, max_concurrency=0)


def _group(gid, name, channels, *, formats=("openai", "anthropic"), fallback_only=False, enabled=True):
    return TokenGroupInfo(gid, name, D("1.0"), formats, fallback_only, enabled, channels)


def _model(mid, name, *, kind="text", tier="standard", price=TOKENS) -> ModelInfo:
    return ModelInfo(mid, name, kind, tier, price, 4096)


OPENAI = _channel(1)
VIDEO = _channel(2, "video")
ANTHROPIC = _channel(3, "anthropic")
SNAPSHOT = RoutingSnapshot(
    version="v",
    built_at=0.0,
    models={
        "text": _model(1, "text"),
        "premium": _model(2, "premium", tier="premium"),
        "percall": _model(3, "percall", price=PER_CALL),
        "video": _model(4, "video", kind="video", price=ModelPrice(usd_per_second=D("0.1"))),
    },
    groups={
        1: _group(
            1, "Main", {"text": (OPENAI,), "premium": (OPENAI,), "percall": (OPENAI,), "video": (VIDEO,)}
        ),
        2: _group(2, "Backup", {"text": (OPENAI,), "ghost": (OPENAI,)}, fallback_only=True),
        3: _group(3, "AnthropicOnly", {"text": (ANTHROPIC,)}, formats=("anthropic",)),
        4: _group(4, "Off", {"text": (OPENAI,)}, enabled=False),
        5: _group(5, "Granted", {"text": (OPENAI,)}),
        6: _group(6, "Empty", {}),
    },
    user_group_tiers={UG: frozenset({"standard"})},
    access={
        (UG, 1): AccessInfo(False, None),
        (UG, 2): AccessInfo(False, D("0.8")),
        (UG, 3): AccessInfo(False, None),
        (UG, 4): AccessInfo(False, None),
        (UG, 6): AccessInfo(False, None),
    },
    usd_cny_rate=D("7"),
    user_grants={99: frozenset({5})},
)


def caller(*group_ids, mode="usage_first", allowlist=(), user_id=None) -> Caller:
    return Caller(UG, tuple(group_ids), mode, frozenset(allowlist), user_id)


def test_plan_orders_the_select_group_then_fallbacks_at_their_multipliers():
    result = policy.plan(SNAPSHOT, caller(1, 2), "text")
    assert isinstance(result, Plan)
    assert [(s.group.name, s.fallback, s.multiplier) for s in result.steps] == [
        ("Main", False, D("1.0")),
        ("Backup", True, D("0.8")),
    ]
    assert result.max_multiplier == D("1.0")


@pytest.mark.parametrize(
    ("who", "model", "reason"),
    [
        (caller(1), "nope", Reason.UNKNOWN_MODEL),
        (caller(1), "video", Reason.WRONG_ENDPOINT),
        (caller(6), "text", Reason.NOT_OFFERED),
        (caller(4), "text", Reason.NOT_OFFERED),  # a disabled group offers nothing
        (caller(2), "text", Reason.ACCESS),  # a fallback-only group cannot be the select group
        (caller(5), "text", Reason.ACCESS),  # no access and no grant
        (caller(1, allowlist={"percall"}), "text", Reason.ALLOWLIST),
        (caller(1), "premium", Reason.TIER),
        (caller(1, mode="call"), "text", Reason.BILLING_MODE),
        (caller(1, mode="usage"), "percall", Reason.BILLING_MODE),
    ],
)
def test_plan_refuses_with_the_reason_code(who, model, reason):
    result = policy.plan(SNAPSHOT, who, model)
    assert isinstance(result, Refusal)
    assert (result.reason, result.model_name) == (reason, model)


def test_a_tier_refusal_carries_the_facts_its_message_needs():
    result = policy.plan(SNAPSHOT, caller(1), "premium")
    assert (result.model_tier, result.allowed_tiers, result.token_groups) == (
        "premium",
        ("standard",),
        ("Main",),
    )


def test_a_group_offers_a_model_only_in_its_formats_and_channel_kinds():
    assert policy.plan(SNAPSHOT, caller(3), "text", api_format="openai").reason == Reason.NOT_OFFERED
    assert isinstance(policy.plan(SNAPSHOT, caller(3), "text", api_format="anthropic"), Plan)
    assert policy.plan(SNAPSHOT, caller(1), "text", family="videos").reason == Reason.WRONG_ENDPOINT
    assert not policy.offers(SNAPSHOT.groups[1], "video", "chat")


def test_a_users_own_grant_opens_a_group_without_user_group_access():
    assert policy.plan(SNAPSHOT, caller(5), "text").reason == Reason.ACCESS
    assert isinstance(policy.plan(SNAPSHOT, caller(5, user_id=99), "text"), Plan)
    assert "Granted" in [g.name for g in policy.usable_groups(SNAPSHOT, UG, fallback=False, user_id=99)]


def test_usable_groups_and_groups_offering_skip_disabled_and_fallback_only_groups():
    select = [g.name for g in policy.usable_groups(SNAPSHOT, UG, fallback=False)]
    assert select == ["AnthropicOnly", "Empty", "Main"]
    offering = [g.name for g in policy.groups_offering(SNAPSHOT, UG, "text", api_format="openai")]
    assert offering == ["Backup", "Main"]


def test_group_models_lists_only_catalog_models_with_a_channel():
    assert policy.group_models(SNAPSHOT, 2) == ["text"]  # "ghost" is not in the catalog
    assert policy.group_models(SNAPSHOT, 6) == []
    assert policy.group_models(SNAPSHOT, 404) == []


CALLERS = [
    caller(1),
    caller(1, 2),
    caller(2, 1),
    caller(3),
    caller(5),
    caller(5, user_id=99),
    caller(1, mode="call"),
    caller(1, mode="usage"),
    caller(1, allowlist={"percall", "video"}),
]


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("api_format", ["openai", "anthropic"])
def test_callable_models_are_exactly_the_models_plan_accepts(who, api_format):
    def family(name):
        return "videos" if SNAPSHOT.models[name].kind == "video" else "chat"

    accepted = {
        name
        for name in SNAPSHOT.models
        if isinstance(policy.plan(SNAPSHOT, who, name, family=family(name), api_format=api_format), Plan)
    }
    assert {name for name, _ in policy.callable_models(SNAPSHOT, who, api_format)} == accepted
