"""Usage, wallet, ledger, recharge and price quotes: the user's own only, money as RMB strings."""

from decimal import Decimal

import pytest

from apiyi_admin.demo import BONUS_TIERS
from apiyi_admin.demo import USD_CNY_RATE as RATE
from billing.ledger import get_ledger
from billing.models import LedgerEntry, UsageRecord
from billing.services import wallet_recharge
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def settle(user, token, request_id, cost_micro, **record):
    return (
        get_ledger()
        .settle(
            request_id=request_id,
            user_id=user.pk,
            cost_micro=cost_micro,
            record={
                "token_id": token.pk,
                "token_name": token.name,
                "model_name": "claude-sonnet-4-5",
                "group_name": "ClaudeCode",
                "channel_name": "claude-official",
                "status": "success",
                "http_status": 200,
                "input_tokens": 1000,
                "output_tokens": 100,
                "price_breakdown": {"basis": "tokens", "cost_cny": "0.021600"},
                "trace": [{"group": "ClaudeCode", "channel": "claude-official", "outcome": "ok", "ms": 12}],
                **record,
            },
        )
        .record
    )


@pytest.fixture
def records(alice, bob, groups):
    wallet_recharge(user=alice, amount_micro=100_000_000, payment_ref="a")
    wallet_recharge(user=bob, amount_micro=100_000_000, payment_ref="b")
    a_token, _ = token_create(user=alice, name="a", select_group=groups["ClaudeCode"])
    b_token, _ = token_create(user=bob, name="b", select_group=groups["Default"])
    return {
        "alice": settle(alice, a_token, "req-alice-1", 21_600),
        "alice_fb": settle(
            alice, a_token, "req-alice-2", 5_000, group_name="Default", fallback_used=True, status="success"
        ),
        "bob": settle(bob, b_token, "req-bob-1", 7_000, group_name="Default"),
        "a_token": a_token,
    }


def test_usage_lists_only_own_records_with_cost_trace_and_breakdown(as_alice, records):
    page = as_alice.get("/api/v1/usage/").json()
    assert page["count"] == 2
    ids = {r["request_id"] for r in page["results"]}
    assert ids == {"req-alice-1", "req-alice-2"}
    first = next(r for r in page["results"] if r["request_id"] == "req-alice-1")
    assert first["cost_cny"] == "0.021600"
    assert first["group"] == "ClaudeCode" and first["model"] == "claude-sonnet-4-5"
    assert first["trace"][0]["channel"] == "claude-official"
    assert first["price_breakdown"]["basis"] == "tokens"
    assert first["token"] == records["a_token"].pk
    assert first["created_at"].endswith("Z")


def test_usage_filters(as_alice, records):
    def ids(query):
        return {r["request_id"] for r in as_alice.get(f"/api/v1/usage/?{query}").json()["results"]}

    assert ids("request_id=req-alice-2") == {"req-alice-2"}
    assert ids("fallback_used=true") == {"req-alice-2"}
    assert ids("group=ClaudeCode") == {"req-alice-1"}
    assert ids(f"token={records['a_token'].pk}") == {"req-alice-1", "req-alice-2"}
    assert ids("model=gpt-5.1") == set()
    assert ids("request_id=req-bob-1") == set()  # cannot infer another user's request
    assert ids("date_from=2000-01-01T00:00:00Z&ordering=-cost") == {"req-alice-1", "req-alice-2"}
    assert as_alice.get("/api/v1/usage/?date_from=garbage").status_code == 400
    assert as_alice.get("/api/v1/usage/?status=nope").status_code == 400


def test_other_users_usage_record_is_not_found(as_alice, records):
    assert as_alice.get(f"/api/v1/usage/{records['bob'].pk}/").status_code == 404
    assert as_alice.get(f"/api/v1/usage/{records['alice'].pk}/").status_code == 200


def test_wallet_and_ledger_are_own(as_alice, records):
    wallet = as_alice.get("/api/v1/wallet/").json()
    assert wallet["balance_cny"] == "99.973400"  # 100 - 0.0216 - 0.005
    assert wallet["total_recharged_cny"] == "100.000000"
    assert [t["bonus_percent"] for t in wallet["bonus_tiers"]] == [f"{p:.2f}" for p in BONUS_TIERS.values()]
    ledger = as_alice.get("/api/v1/wallet/ledger/").json()
    assert {e["request_id"] for e in ledger["results"]} == {None, "req-alice-1", "req-alice-2"}
    kinds = [e["kind"] for e in as_alice.get("/api/v1/wallet/ledger/?kind=charge").json()["results"]]
    assert kinds == ["charge", "charge"]
    charge = next(e for e in ledger["results"] if e["request_id"] == "req-alice-1")
    assert charge["amount_cny"] == "-0.021600"


def test_recharge_credits_bonus_as_its_own_line(as_alice, alice):
    response = as_alice.post("/api/v1/wallet/recharges/", {"amount_cny": "1000"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["amount_cny"] == "1000.000000" and body["bonus_cny"] == "100.000000"
    assert body["balance_cny"] == "1100.000000"
    kinds = set(LedgerEntry.objects.filter(wallet__user=alice).values_list("kind", flat=True))
    assert kinds == {"recharge", "bonus"}
    assert as_alice.get("/api/v1/wallet/recharges/").json()["count"] == 1


@pytest.mark.parametrize(
    "amount", ["0", "-5", "abc", "1e3", "NaN", "Infinity", "20000000", "0.0000001", None, True]
)
def test_recharge_refuses_bad_amounts(as_alice, alice, amount):
    response = as_alice.post("/api/v1/wallet/recharges/", {"amount_cny": amount}, format="json")
    assert response.status_code == 400, (amount, response.content)
    assert "amount_cny" in response.json()["errors"]
    assert not LedgerEntry.objects.filter(wallet__user=alice).exists()


def test_price_quote_by_group(as_alice):
    response = as_alice.post(
        "/api/v1/price-quote/",
        {"group": "ClaudeCode", "model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 100},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    # (1000 × $3 + 100 × $15) / 1M × rate × 0.95
    assert body["charge"]["cost_cny"] == f"{Decimal(4500) / 1_000_000 * RATE * Decimal('0.95'):.6f}"
    assert body["group"] == "ClaudeCode" and body["billing_mode"] == "usage_first"
    assert body["sentence"].startswith("0.95 × official price")


def test_price_quote_by_token_uses_its_fallback_group_for_the_model(as_alice, alice, groups):
    token, _ = token_create(
        user=alice, name="t", select_group=groups["ClaudeCode"], fallback_groups=[groups["Sora2Official"]]
    )
    response = as_alice.post(
        "/api/v1/price-quote/", {"token": token.pk, "model": "sora-2", "seconds": "8"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["group"] == "Sora2Official"
    assert response.json()["charge"]["cost_cny"] == f"{Decimal('0.8') * RATE:.6f}"  # 8 s × $0.1 × rate


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "gpt-5.1"}, "group"),
        ({"group": "Default", "token": 1, "model": "gpt-5.1"}, "group"),
        ({"group": "Claude_Enterprise", "model": "claude-sonnet-4-5"}, "group"),
        ({"group": "Wan", "model": "gpt-5.1"}, "model"),
        ({"group": "Default", "model": "nope"}, "model"),
        ({"group": "Default", "model": "gpt-5.1", "input_tokens": -1}, "input_tokens"),
        ({"group": "Default", "model": "gpt-5.1", "billing_mode": "call"}, "non_field_errors"),
    ],
)
def test_price_quote_errors(as_alice, body, field):
    response = as_alice.post("/api/v1/price-quote/", body, format="json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] in {"invalid", "pricing_error"}
    if data["code"] == "invalid":
        assert field in data["errors"], data


def test_price_quote_with_another_users_token_reveals_nothing(as_alice, bob, groups):
    token, _ = token_create(user=bob, name="b", select_group=groups["Default"])
    response = as_alice.post("/api/v1/price-quote/", {"token": token.pk, "model": "gpt-5.1"}, format="json")
    missing = as_alice.post("/api/v1/price-quote/", {"token": 999999, "model": "gpt-5.1"}, format="json")
    assert response.status_code == missing.status_code == 400
    assert response.json() == missing.json()


def test_usage_record_of_deleted_token_still_listed(as_alice, records):
    records["a_token"].delete()
    results = as_alice.get("/api/v1/usage/").json()["results"]
    assert {r["token"] for r in results} == {None}
    assert UsageRecord.objects.filter(user__username=records["alice"].user.username).count() == 2


def test_why_explains_a_failed_call_of_ones_own(as_alice, as_bob, alice, records):
    from billing.ledger import usage_record_failure

    failed = usage_record_failure(
        request_id="req-alice-404",
        user_id=alice.pk,
        record={
            "model_name": "sora-2",
            "http_status": 404,
            "error_code": "model_not_found",
            "token_id": None,
        },
    )
    response = as_alice.get(f"/api/v1/usage/{failed.pk}/why/")
    assert response.status_code == 200
    body = response.json()
    assert body["request_id"] == "req-alice-404" and body["http_status"] == 404
    assert any("Sora2Official" in a["text"] for a in body["advice"]), body
    assert as_bob.get(f"/api/v1/usage/{failed.pk}/why/").status_code == 404
