"""Tokens through the API: same rules as the console (tokens.services), owner-only."""

import pytest
from rest_framework.test import APIClient

from core.keys import hash_key
from tokens.models import Token
from tokens.services import token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def bobs_token(bob, groups):
    token, _ = token_create(user=bob, name="bob's", select_group=groups["Default"])
    return token


def test_create_returns_the_key_once_with_ordered_fallbacks(as_alice, alice):
    response = as_alice.post(
        "/api/v1/tokens/",
        {
            "name": "ci",
            "select_group": "ClaudeCode",
            "fallback_groups": ["Sora2Official", "Default"],
            "quota_cny": "12.5",
            "model_allowlist": ["claude-sonnet-4-5"],
            "ip_allowlist": ["10.0.0.0/8", "192.168.1.7"],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["key"].startswith("sk-")
    assert body["fallback_groups"] == ["Sora2Official", "Default"]
    assert body["quota_cny"] == "12.500000" and body["spent_cny"] == "0.000000"
    assert body["ip_allowlist"] == ["10.0.0.0/8", "192.168.1.7/32"]
    token = Token.objects.get(pk=body["id"])
    assert token.user == alice and token.key_hash == hash_key(body["key"]) and token.quota_micro == 12_500_000
    listed = as_alice.get("/api/v1/tokens/").json()
    assert listed["count"] == 1 and "key" not in listed["results"][0]
    assert body["key"] not in as_alice.get(f"/api/v1/tokens/{token.pk}/").content.decode()


def test_fallback_order_can_be_changed(as_alice, alice, groups):
    token, _ = token_create(
        user=alice, name="t", select_group=groups["ClaudeCode"], fallback_groups=[groups["Default"]]
    )
    response = as_alice.patch(
        f"/api/v1/tokens/{token.pk}/", {"fallback_groups": ["Wan", "Default"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["fallback_groups"] == ["Wan", "Default"]
    assert [f.group.name for f in token.fallbacks.order_by("position")] == ["Wan", "Default"]


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"select_group": "Claude_Enterprise"}, "select_group", "may not select the Claude_Enterprise group"),
        ({"select_group": "Default", "fallback_groups": ["Default"]}, "fallback_groups", "different group"),
        ({"select_group": "Default", "fallback_groups": ["Wan", "Wan"]}, "fallback_groups", "listed twice"),
        ({"select_group": "NoSuchGroup"}, "select_group", "does not exist"),
        ({"select_group": "Default", "quota_cny": "-1"}, "quota_cny", "must not be negative"),
        ({"select_group": "Default", "quota_cny": "abc"}, "quota_cny", "decimal string"),
        ({"select_group": "Default", "quota_cny": "99999999999"}, "quota_cny", "at most"),
        ({"select_group": "Default", "quota_cny": "1.0000001"}, "quota_cny", "6 decimal places"),
        ({"select_group": "Default", "billing_mode": "free"}, "billing_mode", "not a valid choice"),
        ({"select_group": "Default", "ip_allowlist": ["not-an-ip"]}, "ip_allowlist", "not an IP address"),
        ({"select_group": "Default", "model_allowlist": ["gpt-99"]}, "model_allowlist", "Unknown models"),
        ({"select_group": "Default", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at", "future"),
        ({"select_group": "Default", "expires_at": "tomorrow"}, "expires_at", "format"),
        ({}, "select_group", "required"),
    ],
)
def test_validation_errors_are_field_errors(as_alice, alice, body, field, fragment):
    response = as_alice.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["code"] == "invalid" and data["detail"]
    assert field in data["errors"], data
    assert fragment in " ".join(data["errors"][field])
    assert not Token.objects.filter(user=alice).exists()


def test_malformed_json_is_a_400_not_a_500(as_alice):
    response = as_alice.generic("POST", "/api/v1/tokens/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_wrong_types_are_400(as_alice):
    for body in (
        ["a", "list"],
        {"select_group": ["Default"]},
        {"select_group": "Default", "fallback_groups": "Wan"},
        {"select_group": "Default", "rpm_limit": -5},
        {"select_group": "Default", "quota_cny": True},
    ):
        response = as_alice.post("/api/v1/tokens/", body, format="json")
        assert response.status_code == 400, (body, response.content)


def test_mass_assignment_is_ignored(as_alice, alice, bob):
    response = as_alice.post(
        "/api/v1/tokens/",
        {
            "select_group": "Default",
            "user": bob.pk,
            "spent_cny": "99",
            "held_cny": "5",
            "key_prefix": "sk-mine",
        },
        format="json",
    )
    assert response.status_code == 201
    token = Token.objects.get(pk=response.json()["id"])
    assert token.user == alice and token.spent_micro == 0 and token.held_micro == 0
    assert token.key_prefix != "sk-mine"


def test_disable_and_rename(as_alice, alice, groups):
    token, _ = token_create(user=alice, name="t", select_group=groups["Default"])
    response = as_alice.patch(f"/api/v1/tokens/{token.pk}/", {"enabled": False, "name": "off"}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is False and response.json()["name"] == "off"


def test_create_disabled(as_alice):
    response = as_alice.post("/api/v1/tokens/", {"select_group": "Default", "enabled": False}, format="json")
    assert response.status_code == 201
    assert response.json()["enabled"] is False


def test_roll_replaces_the_key(as_alice, alice, groups):
    token, old = token_create(user=alice, name="t", select_group=groups["Default"])
    response = as_alice.post(f"/api/v1/tokens/{token.pk}/roll/")
    assert response.status_code == 200
    new = response.json()["key"]
    assert new.startswith("sk-") and new != old
    token.refresh_from_db()
    assert token.key_hash == hash_key(new)
    assert response.json()["key_prefix"] == new[:10]


def test_delete(as_alice, alice, groups):
    token, _ = token_create(user=alice, name="t", select_group=groups["Default"])
    assert as_alice.delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert not Token.objects.filter(pk=token.pk).exists()


def test_filters_and_ordering_from_the_console_filterset(as_alice, alice, groups):
    token_create(user=alice, name="alpha", select_group=groups["Default"])
    token_create(user=alice, name="beta", select_group=groups["ClaudeCode"])
    names = [t["name"] for t in as_alice.get("/api/v1/tokens/?select_group=ClaudeCode").json()["results"]]
    assert names == ["beta"]
    names = [t["name"] for t in as_alice.get("/api/v1/tokens/?ordering=name").json()["results"]]
    assert names == ["alpha", "beta"]
    page = as_alice.get("/api/v1/tokens/?limit=1&offset=1").json()
    assert page["count"] == 2 and len(page["results"]) == 1


def test_other_users_token_is_not_found(as_alice, bobs_token):
    url = f"/api/v1/tokens/{bobs_token.pk}/"
    assert as_alice.get(url).status_code == 404
    assert as_alice.patch(url, {"name": "mine"}, format="json").status_code == 404
    assert as_alice.post(f"{url}roll/").status_code == 404
    assert as_alice.delete(url).status_code == 404
    assert as_alice.get("/api/v1/tokens/").json()["count"] == 0
    bobs_token.refresh_from_db()
    assert bobs_token.name == "bob's"


def test_not_found_looks_the_same_for_missing_and_foreign(as_alice, bobs_token):
    foreign = as_alice.get(f"/api/v1/tokens/{bobs_token.pk}/")
    missing = as_alice.get("/api/v1/tokens/999999/")
    assert foreign.json() == missing.json() == {"detail": "Not found.", "code": "not_found"}


def test_anonymous_cannot_list_tokens(demo):
    assert APIClient().get("/api/v1/tokens/").status_code == 401


@pytest.mark.parametrize("pk", ["abc", "99999999999999999999999", "-1", "1.5"])
def test_odd_ids_are_404(as_alice, pk):
    assert as_alice.get(f"/api/v1/tokens/{pk}/").status_code == 404


def test_fallback_cap_in_the_api(as_alice, alice, settings):
    settings.TOKEN_MAX_FALLBACK_GROUPS = 2
    body = {
        "name": "ci",
        "select_group": "ClaudeCode",
        "fallback_groups": ["Default", "Sora2Official", "Wan"],
    }
    response = as_alice.post("/api/v1/tokens/", body, format="json")
    assert response.status_code == 400
    assert "At most 2 fallback groups" in response.content.decode()
    assert not Token.objects.filter(user=alice).exists()
