"""Operator resources: staff only, every write through the audited services."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditLog
from apiyi_admin.demo import BONUS_TIERS, USD_CNY_RATE
from billing.models import LedgerEntry, RechargeBonusTier, Setting
from billing.services import wallet_recharge
from groups.models import Channel, GroupAccess, TokenGroup

pytestmark = pytest.mark.django_db

OPERATOR_URLS = [
    "/api/v1/operator/users/",
    "/api/v1/operator/audit-log/",
    "/api/v1/operator/user-groups/",
    "/api/v1/operator/group-access/",
    "/api/v1/operator/token-groups/",
    "/api/v1/operator/models/",
    "/api/v1/operator/channels/",
    "/api/v1/operator/channel-health/",
    "/api/v1/operator/channel-probes/",
    "/api/v1/operator/usage/",
    "/api/v1/operator/bonus-tiers/",
    "/api/v1/operator/settings/",
]


@pytest.mark.parametrize("url", OPERATOR_URLS)
def test_operator_resources_refuse_non_operators(url, as_alice, as_operator):
    assert as_alice.get(url).status_code == 403
    assert as_alice.post(url, {}, format="json").status_code in (403, 405)
    assert APIClient().get(url).status_code == 401
    assert as_operator.get(url).status_code == 200


def test_non_operator_cannot_write_operator_objects(as_alice, groups, alice):
    group = groups["Default"]
    assert (
        as_alice.patch(f"/api/v1/operator/token-groups/{group.pk}/", {"multiplier": "0.1"}).status_code == 403
    )
    assert as_alice.patch(f"/api/v1/operator/users/{alice.pk}/", {"user_group": "svip"}).status_code == 403
    response = as_alice.post(
        f"/api/v1/operator/users/{alice.pk}/adjust-balance/", {"amount_cny": "5", "reason": "x"}
    )
    assert response.status_code == 403
    group.refresh_from_db()
    alice.refresh_from_db()
    assert str(group.multiplier) == "1.0000" and alice.user_group.name == "vip"


def test_token_group_create_and_update_are_audited(as_operator, operator):
    response = as_operator.post(
        "/api/v1/operator/token-groups/",
        {"name": "Cheap", "multiplier": "0.5", "api_formats": ["openai"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    response = as_operator.patch(f"/api/v1/operator/token-groups/{pk}/", {"multiplier": "0.6"}, format="json")
    assert response.status_code == 200 and response.json()["multiplier"] == "0.6000"
    actions = list(AuditLog.objects.filter(actor=operator).values_list("action", flat=True))
    assert "token_group.create" in actions and "token_group.update" in actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "multiplier": "0", "api_formats": ["openai"]}, "multiplier"),
        ({"name": "X", "multiplier": "101", "api_formats": ["openai"]}, "multiplier"),
        ({"name": "X", "api_formats": ["grpc"]}, "api_formats"),
        ({"name": "X", "api_formats": []}, "api_formats"),
        ({"name": "Default", "api_formats": ["openai"]}, "name"),
    ],
)
def test_token_group_validation(as_operator, body, field):
    response = as_operator.post("/api/v1/operator/token-groups/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_channel_key_is_write_only(as_operator, groups):
    response = as_operator.post(
        "/api/v1/operator/channels/",
        {
            "name": "new-upstream",
            "kind": "openai",
            "base_url": "https://upstream.example.com/v1",
            "api_key": "sk-upstream-secret-123",
            "token_groups": ["Default"],
            "served_models": [{"model": "gpt-5.1", "upstream_name": "gpt-5.1-2026"}],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "api_key" not in body and body["has_api_key"] is True
    assert body["models"] == [{"model": "gpt-5.1", "upstream_name": "gpt-5.1-2026"}]
    channel = Channel.objects.get(pk=body["id"])
    assert channel.api_key == "sk-upstream-secret-123"
    for url in (f"/api/v1/operator/channels/{channel.pk}/", "/api/v1/operator/channels/"):
        assert "sk-upstream-secret-123" not in as_operator.get(url).content.decode()
    log = AuditLog.objects.get(action="channel.create")
    assert "sk-upstream-secret-123" not in str(log.after)
    # PATCH without a key keeps it
    as_operator.patch(f"/api/v1/operator/channels/{channel.pk}/", {"priority": 3}, format="json")
    channel.refresh_from_db()
    assert channel.api_key == "sk-upstream-secret-123" and channel.priority == 3


def test_a_gemini_channel_through_the_api(as_operator, groups):
    response = as_operator.post(
        "/api/v1/operator/channels/",
        {
            "name": "gemini-upstream",
            "kind": "gemini",
            "base_url": "https://generativelanguage.googleapis.com",
            "api_key": "AIza-secret",
            "token_groups": ["Default"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert Channel.objects.get(pk=response.json()["id"]).kind == "gemini"
    bad = as_operator.post(
        "/api/v1/operator/channels/",
        {"name": "x", "kind": "palm", "base_url": "https://u.example.com", "api_key": "k"},
        format="json",
    )
    assert bad.status_code == 400 and "kind" in bad.json()["errors"]


def test_new_channel_needs_a_key(as_operator):
    response = as_operator.post(
        "/api/v1/operator/channels/",
        {"name": "nokey", "kind": "openai", "base_url": "https://u.example.com/v1"},
        format="json",
    )
    assert response.status_code == 400 and "api_key" in response.json()["errors"]


def test_channel_disable_and_enable(as_operator):
    channel = Channel.objects.get(name="sora")
    Channel.objects.filter(pk=channel.pk).update(auto_disabled=True, auto_disabled_reason="probe")
    response = as_operator.post(f"/api/v1/operator/channels/{channel.pk}/enable/", {"reason": "fixed"})
    assert response.status_code == 200 and response.json()["auto_disabled"] is False
    response = as_operator.post(f"/api/v1/operator/channels/{channel.pk}/disable/", {})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert AuditLog.objects.filter(action="channel.disable").exists()


def test_channel_health_shows_live_state(as_operator):
    from groups.saturation import cooldown_start, verdict_set

    channel = Channel.objects.get(name="sora")
    cooldown_start(channel.pk, 30)
    verdict_set(channel.pk, "saturated")
    state = as_operator.get(f"/api/v1/operator/channel-health/{channel.pk}/").json()
    assert state["saturated"] is True and state["verdict"] == "saturated"
    assert 0 < state["cooldown_remaining_s"] <= 30
    rows = as_operator.get("/api/v1/operator/channel-health/?kind=video").json()["results"]
    assert {r["channel"] for r in rows} == {"sora", "wan", "seedance", "veo"}


def test_channel_probe_series(as_operator):
    from django.utils import timezone

    from groups.models import ChannelHealth

    channel = Channel.objects.get(name="wan")
    ChannelHealth.objects.create(
        channel=channel, at=timezone.now(), verdict="healthy", routing_verdict="healthy", latency_ms=40
    )
    rows = as_operator.get("/api/v1/operator/channel-probes/?channel=wan").json()["results"]
    assert rows[0]["channel"] == "wan" and rows[0]["latency_ms"] == 40
    state = as_operator.get(f"/api/v1/operator/channel-health/{channel.pk}/").json()
    assert state["last_probe"]["verdict"] == "healthy"


def test_group_access_set_and_remove(as_operator, user_groups, groups):
    body = {"user_group": "default", "token_group": "Claude_Enterprise", "fallback_only": True}
    response = as_operator.post("/api/v1/operator/group-access/", body, format="json")
    assert response.status_code == 201, response.json()
    again = as_operator.post(
        "/api/v1/operator/group-access/", {**body, "multiplier_override": "0.9"}, format="json"
    )
    assert again.status_code == 200 and again.json()["multiplier_override"] == "0.9000"
    pk = response.json()["id"]
    assert as_operator.delete(f"/api/v1/operator/group-access/{pk}/").status_code == 204
    assert not GroupAccess.objects.filter(pk=pk).exists()
    assert AuditLog.objects.filter(action="group_access.remove").exists()


def test_user_group_update(as_operator):
    response = as_operator.post(
        "/api/v1/operator/user-groups/", {"name": "partners", "model_tiers": ["standard"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    bad = as_operator.patch(
        f"/api/v1/operator/user-groups/{response.json()['id']}/", {"model_tiers": ["gold"]}, format="json"
    )
    assert bad.status_code == 400 and "model_tiers" in bad.json()["errors"]


def test_operator_sets_user_group_and_pin_but_never_staff(as_operator, alice):
    response = as_operator.patch(
        f"/api/v1/operator/users/{alice.pk}/",
        {"user_group": "svip", "user_group_pinned": True, "is_staff": True, "is_superuser": True},
        format="json",
    )
    assert response.status_code == 200, response.json()
    alice.refresh_from_db()
    assert alice.user_group.name == "svip" and alice.user_group_pinned
    assert not alice.is_staff and not alice.is_superuser
    assert AuditLog.objects.filter(action="user.update", object_id=str(alice.pk)).exists()


def test_balance_adjustment_needs_a_reason_and_never_overdraws(as_operator, alice):
    wallet_recharge(user=alice, amount_micro=10_000_000, payment_ref="x")
    url = f"/api/v1/operator/users/{alice.pk}/adjust-balance/"
    ok = as_operator.post(url, {"amount_cny": "-2.5", "reason": "refund reversal"}, format="json")
    assert ok.status_code == 201, ok.json()
    assert ok.json()["amount_cny"] == "-2.500000" and ok.json()["balance_after_cny"] == "7.500000"
    assert as_operator.post(url, {"amount_cny": "5"}, format="json").status_code == 400
    too_much = as_operator.post(url, {"amount_cny": "-100", "reason": "x"}, format="json")
    assert too_much.status_code == 409 and too_much.json()["code"] == "insufficient_balance"
    assert as_operator.post(url, {"amount_cny": "1e9", "reason": "x"}, format="json").status_code == 400
    assert LedgerEntry.objects.filter(wallet__user=alice, kind="adjustment").count() == 1
    assert as_operator.get(f"/api/v1/operator/users/{alice.pk}/").json()["balance_cny"] == "7.500000"
    assert AuditLog.objects.filter(action="wallet.adjust").count() == 1


def test_bonus_tiers_crud_is_audited(as_operator):
    created = as_operator.post(
        "/api/v1/operator/bonus-tiers/", {"min_amount_cny": "500", "bonus_percent": "5"}, format="json"
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert (
        as_operator.patch(f"/api/v1/operator/bonus-tiers/{pk}/", {"bonus_percent": "7.5"}).status_code == 200
    )
    assert RechargeBonusTier.objects.get(pk=pk).bonus_percent == 7.5
    assert as_operator.delete(f"/api/v1/operator/bonus-tiers/{pk}/").status_code == 204
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"bonus_tier.create", "bonus_tier.update", "bonus_tier.delete"} <= actions
    dup = as_operator.post(
        "/api/v1/operator/bonus-tiers/",
        {"min_amount_cny": str(min(BONUS_TIERS)), "bonus_percent": "5"},
        format="json",
    )
    assert dup.status_code == 400
    bad = as_operator.post(
        "/api/v1/operator/bonus-tiers/", {"min_amount_cny": "10", "bonus_percent": "150"}, format="json"
    )
    assert bad.status_code == 400 and "bonus_percent" in bad.json()["errors"]


@pytest.mark.parametrize("rate", ["0", "-1", "abc", "NaN", "5000", ""])
def test_usd_cny_rate_is_validated(as_operator, rate):
    response = as_operator.patch("/api/v1/operator/settings/", {"usd_cny_rate": rate}, format="json")
    assert response.status_code == 400
    assert Setting.objects.get(key="usd_cny_rate").value == str(USD_CNY_RATE)


def test_usd_cny_rate_change_is_audited_and_used(as_operator, as_alice):
    response = as_operator.patch("/api/v1/operator/settings/", {"usd_cny_rate": "7.1"}, format="json")
    assert response.status_code == 200 and response.json()["usd_cny_rate"] == "7.1000"
    assert AuditLog.objects.filter(action="setting.update").exists()
    quote = as_alice.post(
        "/api/v1/price-quote/", {"group": "Default", "model": "gpt-5.1", "output_tokens": 1000000}
    )
    assert quote.json()["charge"]["cost_cny"] == "71.000000"


def test_audit_log_filters(as_operator):
    TokenGroup.objects.get(name="Wan")
    as_operator.patch("/api/v1/operator/settings/", {"usd_cny_rate": "7.3"}, format="json")
    rows = as_operator.get("/api/v1/operator/audit-log/?action=setting").json()["results"]
    assert [r["action"] for r in rows] == ["setting.update"]
    assert rows[0]["after"] == {"value": "7.3000"}


def test_operator_sees_all_usage(as_operator, alice, groups):
    from billing.ledger import get_ledger

    get_ledger().settle(
        request_id="r1", user_id=alice.pk, cost_micro=0, record={"model_name": "gpt-5.1", "status": "success"}
    )
    rows = as_operator.get("/api/v1/operator/usage/").json()["results"]
    assert rows[0]["user"] == alice.username


def test_probe_now_applies_the_verdict(simulator, as_operator, as_alice):
    channel = Channel.objects.get(name="claude-aws")
    response = as_operator.post(f"/api/v1/operator/channels/{channel.pk}/probe/")
    assert response.status_code == 200, response.json()
    assert response.json()["channel"] == "claude-aws" and response.json()["verdict"] == "healthy"
    probes = as_operator.get("/api/v1/operator/channel-probes/?channel=claude-aws").json()["results"]
    assert probes and probes[0]["verdict"] == "healthy"
    assert as_alice.post(f"/api/v1/operator/channels/{channel.pk}/probe/").status_code == 403
