"""Operator pages for token groups and user groups: saves go through services, multiplier
changes ask for confirmation with before/after prices."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import USD_CNY_RATE as RATE


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _group_form(group, **changes):
    data = {
        "name": group.name,
        "description": group.description,
        "multiplier": str(group.multiplier),
        "api_formats": group.api_formats,
        "fallback_only": "on" if group.fallback_only else "",
        "enabled": "on" if group.enabled else "",
        "sort_order": group.sort_order,
        "action": "save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def test_list_paginates_sorts_and_filters(operator):
    page = _client(operator).get("/ops/token-groups/?ordering=-multiplier&q=Claude").content.decode()
    assert "ClaudeCode" in page and "Claude_Enterprise" in page and "Sora2Official" not in page
    assert "claude-sonnet-4-5" in page


def test_multiplier_change_asks_for_confirmation_then_saves(operator, groups):
    from accounts.models import AuditLog

    cc = groups["ClaudeCode"]
    c = _client(operator)
    response = c.post(f"/ops/token-groups/{cc.pk}/", _group_form(cc, multiplier="0.9"))
    page = response.content.decode()
    assert response.status_code == 200 and 'data-testid="confirm"' in page
    # claude-sonnet-4-5 input: $3 × rate × 0.95 before, × 0.9 after
    assert f"¥{3 * RATE * Decimal('0.95'):.4f}" in page and f"¥{3 * RATE * Decimal('0.9'):.4f}" in page
    cc.refresh_from_db()
    assert cc.multiplier == Decimal("0.95")
    response = c.post(f"/ops/token-groups/{cc.pk}/", {**_group_form(cc, multiplier="0.9"), "confirm": "1"})
    assert response.status_code == 302
    cc.refresh_from_db()
    assert cc.multiplier == Decimal("0.9")
    assert AuditLog.objects.filter(action="token_group.update", object_id=str(cc.pk)).exists()


def test_other_changes_save_directly_and_errors_show(operator, groups):
    wan = groups["Wan"]
    c = _client(operator)
    assert c.post(f"/ops/token-groups/{wan.pk}/", _group_form(wan, description="Wan 2.5")).status_code == 302
    wan.refresh_from_db()
    assert wan.description == "Wan 2.5"
    page = c.post(f"/ops/token-groups/{wan.pk}/", _group_form(wan, multiplier="0", api_formats=[])).content
    assert b"greater than or equal to 0.0001" in page and b"This field is required" in page


def test_create_token_group(operator):
    c = _client(operator)
    data = {"name": "Veo", "multiplier": "1.1", "api_formats": ["openai"], "enabled": "on", "sort_order": "9"}
    assert c.post("/ops/token-groups/new/", data).status_code == 302
    from groups.models import TokenGroup

    assert TokenGroup.objects.get(name="Veo").multiplier == Decimal("1.1")


def test_access_override_asks_then_sets_and_remove(operator, groups, user_groups):
    from groups.models import GroupAccess

    default, vip = groups["Default"], user_groups["vip"]
    c = _client(operator)
    url = f"/ops/token-groups/{default.pk}/access/"
    page = c.post(url, {"user_group": vip.pk, "multiplier_override": "0.8", "action": "set"}).content.decode()
    assert "Change what vip pays in Default?" in page
    assert GroupAccess.objects.get(user_group=vip, token_group=default).multiplier_override is None
    c.post(url, {"user_group": vip.pk, "multiplier_override": "0.8", "action": "set", "confirm": "1"})
    assert GroupAccess.objects.get(user_group=vip, token_group=default).multiplier_override == Decimal("0.8")
    c.post(url, {"user_group": vip.pk, "action": "remove"})
    assert not GroupAccess.objects.filter(user_group=vip, token_group=default).exists()


def test_user_group_edit(operator, user_groups):
    vip = user_groups["vip"]
    c = _client(operator)
    page = c.get("/ops/user-groups/").content.decode()
    assert "vip" in page and "Claude_Enterprise" in page  # enterprise's fallback-only group
    data = {"name": "vip", "description": "VIP", "model_tiers": ["standard"], "sort_order": "1"}
    assert c.post(f"/ops/user-groups/{vip.pk}/", data).status_code == 302
    vip.refresh_from_db()
    assert vip.model_tiers == ["standard"]
    page = c.post(f"/ops/user-groups/{vip.pk}/", {**data, "name": "not a slug!"}).content
    assert b"Enter a valid" in page
