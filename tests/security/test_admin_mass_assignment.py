"""Django admin: no one below operator can set balances, user groups, quotas or staff flags,
and even operators cannot write fields that only services may change."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import AuditLog, User
from billing.models import LedgerEntry, Wallet
from groups.models import Channel
from tokens.models import Token


@pytest.fixture
def customer(demo):
    return User.objects.get(username="demo")


@pytest.fixture
def operator(demo):
    return User.objects.get(username="admin")


def _user_form(user, **extra):
    return {
        "username": user.username,
        "password": user.password,
        "email": "",
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "user_group": "",
        "rpm_limit": "",
        **extra,
    }


def test_a_customer_cannot_reach_the_admin_or_promote_themselves(client, customer, user_groups):
    group = customer.user_group_id
    client.force_login(customer)
    url = reverse("admin:accounts_user_change", args=[customer.pk])
    assert client.get(url).status_code == 302
    client.post(
        url, _user_form(customer, is_staff="on", is_superuser="on", user_group=user_groups["svip"].pk)
    )
    customer.refresh_from_db()
    assert not customer.is_staff and not customer.is_superuser
    assert customer.user_group_id == group


def test_staff_without_permissions_cannot_change_users_or_groups(client, make_user, customer, user_groups):
    clerk = make_user(is_staff=True)
    group = customer.user_group_id
    client.force_login(clerk)
    url = reverse("admin:accounts_user_change", args=[clerk.pk])
    response = client.post(url, _user_form(clerk, is_superuser="on", is_staff="on"))
    assert response.status_code == 403
    other = reverse("admin:accounts_user_change", args=[customer.pk])
    assert client.post(other, _user_form(customer, user_group=user_groups["svip"].pk)).status_code == 403
    clerk.refresh_from_db()
    customer.refresh_from_db()
    assert not clerk.is_superuser and customer.user_group_id == group


def test_token_editors_cannot_write_spend_hold_or_key_fields(client, make_user, customer):
    editor = make_user(is_staff=True)
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["change_token", "view_token"]))
    client.force_login(editor)
    token = Token.objects.filter(user=customer).first()
    before = Token.objects.values("spent_micro", "held_micro", "key_hash", "key_prefix", "user_id").get(
        pk=token.pk
    )
    response = client.post(
        reverse("admin:tokens_token_change", args=[token.pk]),
        {
            "user": editor.pk,
            "name": "renamed",
            "select_group": token.select_group_id,
            "billing_mode": token.billing_mode,
            "fallback_group_names": "",
            "model_allowlist_text": "",
            "ip_allowlist_text": "",
            "enabled": "on",
            "spent_micro": "0",
            "held_micro": "0",
            "key_hash": "0" * 64,
            "key_prefix": "sk-evil",
        },
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.name == "renamed"
    after = Token.objects.values("spent_micro", "held_micro", "key_hash", "key_prefix", "user_id").get(
        pk=token.pk
    )
    assert after == before


def test_even_operators_change_money_only_through_services(client, operator, customer):
    client.force_login(operator)
    wallet = Wallet.objects.get(user=customer)
    balance = wallet.balance_micro
    change = reverse("admin:billing_wallet_change", args=[wallet.pk])
    assert client.post(change, {"user": customer.pk, "balance_micro": "999999999999"}).status_code == 403
    assert client.get(reverse("admin:billing_wallet_add")).status_code == 403
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    entry = LedgerEntry.objects.filter(wallet=wallet).first()
    assert (
        client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code
        == 403
    )
    wallet.refresh_from_db()
    assert wallet.balance_micro == balance


def test_the_audit_log_cannot_be_edited_or_deleted(client, operator):
    client.force_login(operator)
    entry = AuditLog.objects.create(action="test.entry", actor_name="x")
    change = reverse("admin:accounts_auditlog_change", args=[entry.pk])
    delete = reverse("admin:accounts_auditlog_delete", args=[entry.pk])
    assert client.post(change, {"action": "x"}).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.action == "test.entry"


def test_the_encrypted_upstream_key_cannot_be_posted_directly(client, operator):
    client.force_login(operator)
    channel = Channel.objects.get(name="domestic")
    stored = channel.api_key_encrypted
    data = {
        "name": channel.name,
        "kind": channel.kind,
        "base_url": channel.base_url,
        "api_key": "",
        "api_key_encrypted": "gAAAAA-attacker-controlled",
        "priority": "0",
        "weight": "1",
        "max_concurrency": "0",
        "enabled": "on",
        "allow_private_network": "on",
        "probe_interval_s": "15",
        "latency_threshold_ms": "20000",
        "channel_models-TOTAL_FORMS": "0",
        "channel_models-INITIAL_FORMS": "0",
    }
    response = client.post(reverse("admin:groups_channel_change", args=[channel.pk]), data)
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.api_key_encrypted == stored
