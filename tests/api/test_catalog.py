"""Token groups and models for users: what they may use, with final prices explained."""

from decimal import Decimal

import pytest

from apiyi_admin.demo import USD_CNY_RATE as RATE
from billing.models import Setting
from groups.models import GroupAccess

pytestmark = pytest.mark.django_db


def by_name(items):
    return {item["name"]: item for item in items}


def models_bonus(group):
    return {m["price"]["bonus_percent"] for m in group["models"]}


def test_groups_lists_what_the_user_may_use(as_bob):
    groups = by_name(as_bob.get("/api/v1/groups/").json())
    assert set(groups) == {"Default", "ClaudeCode", "Sora2Official", "Wan", "Seedance2"}
    claude = groups["ClaudeCode"]
    assert claude["multiplier"] == "0.9500" and claude["selectable"] is True
    assert claude["sentence"] == "0.95 × official price (95% of official)"  # bob never recharged: no bonus
    assert models_bonus(claude) == {"0"}
    assert claude["api_formats"] == ["openai", "anthropic"]
    models = by_name(claude["models"])
    assert {"claude-sonnet-4-5", "deepseek-v4"} <= set(models)
    assert models["claude-opus-4-6"]["available"] is False  # premium tier, bob is default
    sonnet = by_name([{**u, "name": u["unit"]} for u in models["claude-sonnet-4-5"]["price"]["units"]])
    # $3 / 1M input × rate × 0.95
    assert sonnet["input"]["final_cny"] == f"{3 * RATE * Decimal('0.95'):.6f}"
    assert sonnet["input"]["final_usd_equivalent"] == "2.850000"
    assert sonnet["input"]["official_usd"] == "3.000000"


def test_enterprise_sees_fallback_only_group_as_not_selectable(key_client, make_user, user_groups):
    client = key_client(make_user(user_group=user_groups["enterprise"]))
    groups = by_name(client.get("/api/v1/groups/").json())
    assert groups["Claude_Enterprise"]["selectable"] is False
    assert client.get("/api/v1/groups/Claude_Enterprise/").status_code == 200


def test_group_the_user_may_not_use_is_not_found(as_bob):
    assert as_bob.get("/api/v1/groups/Claude_Enterprise/").status_code == 404
    assert as_bob.get("/api/v1/groups/Nope/").status_code == 404


def test_multiplier_override_and_rate_change_show_up(as_bob, user_groups, groups):
    GroupAccess.objects.filter(user_group=user_groups["default"], token_group=groups["Default"]).update(
        multiplier_override="0.8"
    )
    Setting.objects.filter(key="usd_cny_rate").update(value="7")
    group = as_bob.get("/api/v1/groups/Default/").json()
    assert group["multiplier"] == "0.8000"
    gpt = by_name(group["models"])["gpt-5.1"]["price"]
    assert gpt["usd_cny_rate"] == "7"
    units = {u["unit"]: u for u in gpt["units"]}
    assert units["output"]["final_cny"] == "56.000000"  # $10 × 7 × 0.8


def test_models_catalog_with_prices_per_group(as_bob):
    page = as_bob.get("/api/v1/models/").json()
    models = by_name(page["results"])
    sonnet = models["claude-sonnet-4-5"]
    assert sonnet["official"]["input_usd_per_mtok"] == "3.000000"
    assert sonnet["official"]["usd_per_call"] is None
    assert {p["group"] for p in sonnet["prices"]} == {"ClaudeCode", "Default"}
    sora = models["sora-2"]
    assert [p["group"] for p in sora["prices"]] == ["Sora2Official"]
    assert sora["prices"][0]["units"][0]["unit"] == "second"


def test_models_filter_and_retrieve_by_dotted_name(as_bob):
    names = [m["name"] for m in as_bob.get("/api/v1/models/?kind=video").json()["results"]]
    assert set(names) == {"veo-3.1", "sora-2", "wan-2.5", "seedance-2"}
    response = as_bob.get("/api/v1/models/qwen3.5-max/")
    assert response.status_code == 200 and response.json()["name"] == "qwen3.5-max"
    assert as_bob.get("/api/v1/models/nope/").status_code == 404
