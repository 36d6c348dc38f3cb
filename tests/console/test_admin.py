import pytest
from django.urls import reverse

from accounts.models import AuditLog
from groups.models import TokenGroup
from tokens.models import Token


@pytest.fixture
def operator(client, demo):
    from accounts.models import User

    admin = User.objects.get(username="admin")
    client.force_login(admin)
    return admin


def test_admin_pages_render(client, operator):
    for name in ("tokengroup", "channel", "model", "usergroup"):
        assert client.get(reverse(f"admin:groups_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:tokens_token_add")).status_code == 200
    channel_url = reverse("admin:groups_channel_change", args=[1])
    page = client.get(channel_url).content.decode()
    assert "sim-" not in page  # the upstream key is write-only


def test_negative_multiplier_is_refused_with_a_message(client, operator):
    group = TokenGroup.objects.get(name="Default")
    url = reverse("admin:groups_tokengroup_change", args=[group.pk])
    data = {
        "name": "Default",
        "description": "",
        "multiplier": "-1",
        "api_formats": ["openai"],
        "enabled": "on",
        "sort_order": "0",
        "accesses-TOTAL_FORMS": "0",
        "accesses-INITIAL_FORMS": "0",
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 0.0001" in response.content.decode()
    group.refresh_from_db()
    assert str(group.multiplier) == "1.0000"


def _token_form(user, group, **extra):
    return {
        "user": user.pk,
        "name": "via admin",
        "select_group": group.pk,
        "billing_mode": "usage_first",
        "fallback_group_names": "",
        "model_allowlist_text": "",
        "ip_allowlist_text": "",
        "enabled": "on",
        **extra,
    }


def test_admin_token_form_uses_service_validation(client, operator):
    from accounts.models import User

    demo_user = User.objects.get(username="demo")
    default = TokenGroup.objects.get(name="Default")
    url = reverse("admin:tokens_token_add")
    bad = client.post(url, _token_form(demo_user, default, fallback_group_names="Default"))
    assert "must be a different group" in bad.content.decode()
    bad_ip = client.post(url, _token_form(demo_user, default, ip_allowlist_text="300.1.1.1"))
    assert "is not an IP address or CIDR range" in bad_ip.content.decode()
    enterprise = TokenGroup.objects.get(name="Claude_Enterprise")
    bad_group = client.post(url, _token_form(demo_user, enterprise))
    assert "may not select the Claude_Enterprise group" in bad_group.content.decode()
    count = Token.objects.count()
    ok = client.post(url, _token_form(demo_user, default, fallback_group_names="ClaudeCode"), follow=True)
    assert Token.objects.count() == count + 1
    assert "shown once" in ok.content.decode()
    assert AuditLog.objects.filter(action="token.create", actor=operator).exists()


def test_admin_change_is_audited_with_before_and_after(client, operator):
    group = TokenGroup.objects.get(name="Wan")
    url = reverse("admin:groups_tokengroup_change", args=[group.pk])
    data = {
        "name": "Wan",
        "description": "video",
        "multiplier": "0.9",
        "api_formats": ["openai"],
        "enabled": "on",
        "sort_order": "3",
        "accesses-TOTAL_FORMS": "0",
        "accesses-INITIAL_FORMS": "0",
    }
    client.post(url, data)
    entry = AuditLog.objects.get(action="tokengroup.update")
    assert entry.before["multiplier"] == "1.0000" and entry.after["multiplier"] == "0.9000"
    assert entry.actor_name == "admin"
