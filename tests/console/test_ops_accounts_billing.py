"""Operator pages for users (user group, balance adjustment), bonus tiers, settings, audit log."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import USD_CNY_RATE as RATE


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def test_users_list_filters(operator, customer):
    page = _client(operator).get(f"/ops/users/?q={customer.username}").content.decode()
    assert customer.username in page and "¥1,100.00" in page and ">admin<" not in page


def test_adjust_balance_needs_a_reason_and_never_overdraws(operator, customer):
    from accounts.models import AuditLog

    c = _client(operator)
    url = f"/ops/users/{customer.pk}/"
    page = c.post(url, {"action": "adjust", "amount": "10", "reason": ""}).content.decode()
    assert "This field is required" in page
    page = c.post(
        url, {"action": "adjust", "amount": "-5000", "reason": "oops", "confirm": "1"}
    ).content.decode()
    assert "would make the balance negative" in page
    data = {"action": "adjust", "amount": "-100.5", "reason": "refund of a test"}
    page = c.post(url, data).content.decode()  # one POST only asks
    assert 'data-testid="confirm"' in page and "-¥100.50" in page and "¥1,100.00 → ¥999.50" in page
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == 1_100_000_000
    assert c.post(url, {**data, "confirm": "1"}).status_code == 302
    customer.wallet.refresh_from_db()
    assert customer.wallet.balance_micro == 999_500_000
    assert AuditLog.objects.filter(action="wallet.adjust", object_id=str(customer.pk)).exists()


def test_change_user_group(operator, customer, user_groups):
    c = _client(operator)
    data = {"action": "group", "user_group": user_groups["svip"].pk, "user_group_pinned": "on"}
    assert c.post(f"/ops/users/{customer.pk}/", data).status_code == 302
    customer.refresh_from_db()
    assert customer.user_group.name == "svip" and customer.user_group_pinned


def test_bonus_tiers_add_change_delete(operator):
    from billing.models import RechargeBonusTier

    c = _client(operator)
    assert c.post("/ops/bonus-tiers/", {"min_amount": "500", "bonus_percent": "5"}).status_code == 302
    tier = RechargeBonusTier.objects.get(min_amount_micro=500_000_000)
    assert tier.bonus_percent == Decimal("5")
    c.post("/ops/bonus-tiers/", {"min_amount": "500", "bonus_percent": "7"})
    tier.refresh_from_db()
    assert tier.bonus_percent == Decimal("7")
    page = c.post("/ops/bonus-tiers/", {"min_amount": "500", "bonus_percent": "101"}).content
    assert b"less than or equal to 100" in page
    c.post(f"/ops/bonus-tiers/{tier.pk}/delete/")
    assert not RechargeBonusTier.objects.filter(pk=tier.pk).exists()


def test_rate_change_is_confirmed(operator):
    from billing.selectors import usd_cny_rate

    c = _client(operator)
    page = c.post("/ops/settings/", {"usd_cny_rate": "7.3"}).content.decode()
    assert 'data-testid="confirm"' in page and f"from {RATE} to 7.3" in page
    assert usd_cny_rate() == RATE
    c.post("/ops/settings/", {"usd_cny_rate": "7.3", "confirm": "1"})
    assert usd_cny_rate() == Decimal("7.3")
    page = c.post("/ops/settings/", {"usd_cny_rate": "abc"}).content
    assert b"Enter a number" in page


def test_audit_log_filter(operator, customer):
    c = _client(operator)
    c.post(
        f"/ops/users/{customer.pk}/", {"action": "adjust", "amount": "1", "reason": "gift", "confirm": "1"}
    )
    page = c.get("/ops/audit/?action=wallet").content.decode()
    assert "wallet.adjust" in page and "gift" in page
    assert "wallet.adjust" not in c.get("/ops/audit/?action=channel").content.decode()
