"""Management keys: mk- only, hashed, expiry, revocation, read-only scope; sk- keys refused."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ManagementKey
from accounts.services import management_key_authenticate, management_key_create, management_key_revoke
from core.keys import hash_key
from tokens.services import token_create

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_key_is_shown_once_and_only_its_hash_is_stored(alice):
    key, raw = management_key_create(user=alice, name="ci")
    assert raw.startswith("mk-") and len(raw) > 40
    assert key.key_hash == hash_key(raw) and raw not in key.key_hash
    assert key.key_prefix == raw[:10]
    response = bearer(raw).get("/api/v1/management-keys/")
    assert response.status_code == 200
    assert raw not in response.content.decode()
    assert response.json()["results"][0]["key_prefix"] == raw[:10]


def test_me_reports_user_and_auth_kind(alice, key_client):
    body = key_client(alice).get("/api/v1/me/").json()
    assert body["username"] == alice.username
    assert body["user_group"] == "vip"
    assert body["auth"] == "management_key"
    assert key_client(alice, read_only=True).get("/api/v1/me/").json()["auth"] == "management_key_read_only"


def test_anonymous_gets_401_with_challenge(demo):
    response = APIClient().get("/api/v1/tokens/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


def test_relay_sk_key_never_authenticates_the_api(alice, groups):
    _, sk = token_create(user=alice, name="relay", select_group=groups["Default"])
    response = bearer(sk).get("/api/v1/me/")
    assert response.status_code == 401
    assert "sk- keys are for the relay" in response.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer mk-nope", "Bearer mk-a mk-b", "Bearer \u00e9\u00e9"])
def test_malformed_or_unknown_keys_get_401(demo, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code"}


def test_revoked_key_stops_working_at_once(alice):
    key, raw = management_key_create(user=alice, name="ci")
    assert bearer(raw).get("/api/v1/me/").status_code == 200
    management_key_revoke(key=key)
    assert bearer(raw).get("/api/v1/me/").status_code == 401


def test_revoke_through_the_api(alice, key_client):
    client = key_client(alice)
    other, raw = management_key_create(user=alice, name="old")
    assert client.delete(f"/api/v1/management-keys/{other.pk}/").status_code == 204
    other.refresh_from_db()
    assert other.revoked_at is not None
    assert bearer(raw).get("/api/v1/me/").status_code == 401


def test_expired_key_is_refused(alice):
    key, raw = management_key_create(user=alice, name="ci", expires_at=timezone.now() + timedelta(hours=1))
    assert bearer(raw).get("/api/v1/me/").status_code == 200
    ManagementKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert bearer(raw).get("/api/v1/me/").status_code == 401


def test_inactive_user_key_is_refused(alice):
    _, raw = management_key_create(user=alice, name="ci")
    alice.is_active = False
    alice.save()
    assert bearer(raw).get("/api/v1/me/").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(alice, django_assert_num_queries):
    key, raw = management_key_create(user=alice, name="ci")
    assert key.last_used_at is None
    management_key_authenticate(raw)
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # the lookup only, no write
        management_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at == first
    ManagementKey.objects.filter(pk=key.pk).update(last_used_at=first - timedelta(minutes=2))
    management_key_authenticate(raw)
    key.refresh_from_db()
    assert key.last_used_at > first - timedelta(minutes=2)


def test_read_only_key_reads_but_cannot_write(alice, key_client, groups):
    client = key_client(alice, read_only=True)
    assert client.get("/api/v1/tokens/").status_code == 200
    response = client.post("/api/v1/tokens/", {"select_group": "Default"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "read_only_key"
    token, _ = token_create(user=alice, name="t", select_group=groups["Default"])
    assert client.patch(f"/api/v1/tokens/{token.pk}/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 403
    assert client.post(f"/api/v1/tokens/{token.pk}/roll/").status_code == 403
    assert client.post("/api/v1/wallet/recharges/", {"amount_cny": "10"}, format="json").status_code == 403
    assert client.post("/api/v1/management-keys/", {"name": "more"}, format="json").status_code == 403
    token.refresh_from_db()
    assert token.name == "t"


def test_read_only_key_may_ask_for_a_price_quote(alice, key_client):
    client = key_client(alice, read_only=True)
    response = client.post(
        "/api/v1/price-quote/", {"group": "Default", "model": "gpt-5.1", "input_tokens": 1000}, format="json"
    )
    assert response.status_code == 200


def test_read_only_operator_key_cannot_change_operator_resources(operator, key_client):
    client = key_client(operator, read_only=True)
    assert client.get("/api/v1/operator/settings/").status_code == 200
    response = client.patch("/api/v1/operator/settings/", {"usd_cny_rate": "7.5"}, format="json")
    assert response.status_code == 403


def test_session_auth_enforces_csrf(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/v1/me/").status_code == 200
    response = client.post("/api/v1/management-keys/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_createmanagementkey_prints_only_the_key(alice):
    out = StringIO()
    call_command("createmanagementkey", alice.username, "--name", "deploy", "--read-only", stdout=out)
    raw = out.getvalue().strip()
    assert raw.startswith("mk-") and "\n" not in raw
    key = ManagementKey.objects.get(key_hash=hash_key(raw))
    assert key.name == "deploy" and key.read_only and key.user == alice


def test_createmanagementkey_unknown_user(db):
    with pytest.raises(CommandError, match="unknown user"):
        call_command("createmanagementkey", "nobody", stdout=StringIO())


def test_key_creation_and_revocation_are_audited(alice, key_client):
    from accounts.models import AuditLog

    client = key_client(alice)
    created = client.post("/api/v1/management-keys/", {"name": "new", "read_only": True}, format="json")
    assert created.status_code == 201
    assert created.json()["key"].startswith("mk-") and created.json()["read_only"] is True
    client.delete(f"/api/v1/management-keys/{created.json()['id']}/")
    rows = AuditLog.objects.filter(object_type="accounts.managementkey")
    actions = list(rows.values_list("action", flat=True))
    assert "management_key.revoke" in actions and actions.count("management_key.create") == 2


def test_cannot_see_or_revoke_another_users_key(alice, bob, key_client):
    bob_key, bob_raw = management_key_create(user=bob, name="bob")
    client = key_client(alice)
    assert client.get(f"/api/v1/management-keys/{bob_key.pk}/").status_code == 404
    assert client.delete(f"/api/v1/management-keys/{bob_key.pk}/").status_code == 404
    assert bearer(bob_raw).get("/api/v1/me/").status_code == 200
