"""Chinese and English console: language switcher, Accept-Language, the zh-Hans catalogue
covering every visible string of the customer pages, time zones, sign-up, password reset."""

import re
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client

PO = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.8"}


def _msgids() -> set[str]:
    """English source strings of the catalogue, as they read once rendered (no placeholders)."""
    text = PO.read_text()
    ids = set()
    for block in re.findall(r'^msgid ((?:".*"\n)+)', text, flags=re.M):
        value = "".join(re.findall(r'"(.*)"', block)).replace('\\"', '"').replace("\\n", "\n")
        value = value.replace("%%", "%")
        if value:
            ids.add(value)
    return ids


class _Text(HTMLParser):
    """Visible text nodes of a page (no script/style/title content)."""

    def __init__(self):
        super().__init__()
        self.nodes, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre", "code"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre", "code"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.nodes.append(" ".join(data.split()))


def _untranslated(html: str, msgids: set[str]) -> list[str]:
    parser = _Text()
    parser.feed(html)
    plain = {" ".join(m.split()) for m in msgids if "%(" not in m and "<" not in m}
    return [node for node in parser.nodes if node in plain and re.search(r"[A-Za-z]{3}", node)]


def _token_form(groups, **extra):
    return {"name": "x", "select_group": groups["ClaudeCode"].pk, "billing_mode": "usage_first", **extra}


@pytest.fixture
def zh_client(customer):
    client = Client(**ZH)
    client.force_login(customer)
    return client


def test_catalogue_has_no_empty_or_fuzzy_entry_and_the_mo_is_current():
    assert "#, fuzzy" not in PO.read_text()
    result = subprocess.run(["scripts/check_messages"], cwd=PO.parents[3], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


CUSTOMER_PAGES = [
    "/",
    "/tokens/",
    "/tokens/new/",
    "/tokens/{token}/",
    "/tokens/{token}/edit/",
    "/preferences/",
    "/wallet/",
    "/wallet/recharge/?amount=100",
    "/wallet/recharge/?amount=5",
    "/prices/",
    "/models/",
    "/models/?q=claude&kind=text",
    "/prices/?group=ClaudeCode&model=claude-sonnet-4-5",
    "/prices/?group=ClaudeCode&model=gpt-5.1",
    "/prices/?token={token}&model=claude-sonnet-4-5",
    "/prices/?scenario_model=claude-sonnet-4-5",
    "/usage/",
    "/usage/spend/",
    "/usage/req_zh_ok/",
    "/usage/req_zh_failed/",
    "/why/?request_id=req_zh_failed",
    "/why/?request_id=req_zh_ok",
    "/why/?request_id=req_nobody",
]


@pytest.mark.parametrize("path", CUSTOMER_PAGES)
def test_customer_pages_in_chinese_show_no_english_msgid(zh_client, customer, cc_token, make_usage, path):
    make_usage(customer, cc_token, request_id="req_zh_ok", model_name="deepseek-v4", cost_micro=21600)
    make_usage(
        customer,
        cc_token,
        request_id="req_zh_failed",
        failed=True,
        status="error",
        http_status=429,
        error_code="upstream_saturated",
        refusal_reason="saturated",
    )
    response = zh_client.get(path.format(token=cc_token.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert _untranslated(html, _msgids()) == []


@pytest.mark.parametrize("path", ["/login/", "/signup/", "/password-reset/"])
def test_signed_out_pages_in_chinese(path, db):
    html = Client(**ZH).get(path).content.decode()
    assert _untranslated(html, _msgids()) == []


def test_the_same_page_in_english_uses_the_msgids(customer, cc_token):
    client = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    client.force_login(customer)
    html = client.get("/tokens/").content.decode()
    assert '<html lang="en">' in html and "Fallback groups" in html and "备用分组" not in html


def test_accept_language_picks_chinese(zh_client, cc_token):
    html = zh_client.get("/tokens/").content.decode()
    assert "备用分组" in html and "新建令牌" in html
    assert "ClaudeCode" in html  # product names stay as they are


def test_switcher_posts_to_set_language_with_csrf_and_sticks(customer):
    client = Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(customer)
    page = client.get("/tokens/").content.decode()
    assert 'action="/i18n/setlang/"' in page and 'name="language" value="zh-hans"' in page
    assert client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/tokens/"}).status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/i18n/setlang/", {"language": "zh-hans", "next": "/tokens/", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    assert "令牌" in client.get("/tokens/").content.decode()  # cookie beats Accept-Language: en


def test_form_errors_and_messages_are_translated(zh_client, groups):
    response = zh_client.post(
        "/tokens/new/",
        {
            "name": "x",
            "select_group": groups["ClaudeCode"].pk,
            "billing_mode": "usage_first",
            "ip_allowlist": "nope",
        },
    )
    assert "不是有效的 IP 地址或 CIDR 网段" in response.content.decode()
    response = zh_client.post(
        "/tokens/new/",
        {"name": "ok", "select_group": groups["ClaudeCode"].pk, "billing_mode": "usage_first"},
        follow=True,
    )
    assert "令牌“ok”已创建" in response.content.decode()


def test_chinese_defaults_to_shanghai_time_with_the_zone_shown(zh_client, customer, groups):
    from tokens.services import token_create

    expires = datetime(2030, 1, 2, 20, 30, tzinfo=UTC)
    token, _ = token_create(user=customer, name="t", select_group=groups["Default"], expires_at=expires)
    html = zh_client.get(f"/tokens/{token.pk}/").content.decode()
    assert "Asia/Shanghai (UTC+08:00)" in html
    assert "2030年1月3日 04:30:00" in html  # 20:30 UTC is 04:30 the next morning in Shanghai


def test_english_defaults_to_utc_and_a_user_zone_wins(customer, groups):
    from tokens.services import token_create

    expires = datetime(2030, 1, 2, 20, 30, tzinfo=UTC)
    token, _ = token_create(user=customer, name="t", select_group=groups["Default"], expires_at=expires)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(customer)
    html = client.get(f"/tokens/{token.pk}/").content.decode()
    assert "UTC (UTC+00:00)" in html and "Jan 2, 2030, 20:30:00" in html
    response = client.post("/preferences/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    html = client.get(f"/tokens/{token.pk}/").content.decode()
    assert "Asia/Tokyo (UTC+09:00)" in html and "Jan 3, 2030, 05:30:00" in html


def test_an_unknown_time_zone_is_refused(customer):
    from django.core.exceptions import ValidationError

    from accounts.services import user_preferences_update

    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(customer)
    assert client.post("/preferences/", {"time_zone": "Mars/Olympus"}).status_code == 200
    with pytest.raises(ValidationError):
        user_preferences_update(user=customer, time_zone="Mars/Olympus")
    customer.refresh_from_db()
    assert customer.time_zone == ""


def test_sign_up_when_enabled(settings, db, demo):
    settings.SIGNUP_ENABLED = True
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(
        "/signup/",
        {
            "username": "newbie",
            "email": "n@example.com",
            "password1": "Wq9!long-pass",
            "password2": "Wq9!long-pass",
        },
    )
    assert response.status_code == 302
    from accounts.models import User

    user = User.objects.get(username="newbie")
    assert user.user_group.name == "default" and user.wallet is not None
    assert client.get("/").status_code == 200


def test_sign_up_closed(settings, db):
    settings.SIGNUP_ENABLED = False
    assert Client().get("/signup/").status_code == 404
    assert "/signup/" not in Client().get("/login/").content.decode()


def test_password_reset_mail_in_chinese_and_the_link_sets_a_password(customer):
    customer.email = "c@example.com"
    customer.save()
    client = Client(**ZH)
    assert client.post("/password-reset/", {"email": "c@example.com"}).status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "重置您的 apiyi 控制台密码"
    assert "请打开以下链接设置新密码" in message.body
    link = re.search(r"http://testserver(/password-reset/\S+/)", message.body).group(1)
    form_url = client.get(link).url
    response = client.post(form_url, {"new_password1": "Wq9!long-pass", "new_password2": "Wq9!long-pass"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.check_password("Wq9!long-pass")


def test_expiry_field_is_read_in_the_user_zone(zh_client, groups, customer):
    zh_client.post(
        "/tokens/new/",
        {
            "name": "z",
            "select_group": groups["Default"].pk,
            "billing_mode": "usage_first",
            "expires_at": "2030-01-03T04:30",
        },
    )
    token = customer.tokens.get(name="z")
    assert token.expires_at == datetime(2030, 1, 2, 20, 30, tzinfo=UTC)
    assert token.expires_at - datetime.now(UTC) > timedelta(days=1)


OPERATOR_PAGES = [
    "/ops/channels/",
    "/ops/channels/new/",
    "/ops/channels/{channel}/",
    "/ops/token-groups/",
    "/ops/token-groups/new/",
    "/ops/token-groups/{token_group}/",
    "/ops/user-groups/",
    "/ops/user-groups/new/",
    "/ops/user-groups/{user_group}/",
    "/ops/models/",
    "/ops/models/new/",
    "/ops/models/{model}/",
    "/ops/users/",
    "/ops/users/{user}/",
    "/ops/bonus-tiers/",
    "/ops/settings/",
    "/ops/audit/",
    "/ops/usage/",
    "/ops/lookup/",
    "/ops/spend/",
]


# Data that happens to equal a msgid, not console text: the seeded user group "default" and the
# model field names an audit entry lists as changed.
OPERATOR_DATA = {"default", "enabled", "select group", "user group"}


@pytest.fixture
def zh_operator(operator):
    client = Client(**ZH)
    client.force_login(operator)
    return client


@pytest.mark.parametrize("path", OPERATOR_PAGES)
def test_operator_pages_in_chinese_show_no_english_msgid(
    zh_operator, operator, customer, cc_token, make_usage, path
):
    from billing.services import bonus_tier_save
    from groups.models import Channel, Model, TokenGroup, UserGroup

    make_usage(customer, cc_token, request_id="req_zh_ops", model_name="deepseek-v4", cost_micro=21600)
    bonus_tier_save(actor=operator, min_amount_micro=100 * 1_000_000, bonus_percent=5)
    ids = {
        "channel": Channel.objects.order_by("pk").first().pk,
        "token_group": TokenGroup.objects.get(name="ClaudeCode").pk,
        "user_group": UserGroup.objects.order_by("pk").first().pk,
        "model": Model.objects.order_by("pk").first().pk,
        "user": customer.pk,
    }
    response = zh_operator.get(path.format(**ids))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert _untranslated(html, _msgids() - OPERATOR_DATA) == []


def test_operator_confirmation_and_messages_in_chinese(zh_operator):
    response = zh_operator.post("/ops/settings/", {"usd_cny_rate": "7.5"})
    html = response.content.decode()
    assert "是的，修改汇率" in html and _untranslated(html, _msgids()) == []
    response = zh_operator.post("/ops/settings/", {"usd_cny_rate": "7.5", "confirm": "1"}, follow=True)
    assert "usd_cny_rate 已从" in response.content.decode()
    html = zh_operator.get("/ops/models/").content.decode()
    assert "<td>文本</td><td>标准</td>" in html  # model kind and tier choices
    from groups.models import TokenGroup

    channel = TokenGroup.objects.get(name="ClaudeCode").channels.order_by("pk").first()
    response = zh_operator.post(f"/ops/channels/{channel.pk}/toggle/", {"confirm": "1"}, follow=True)
    assert f"渠道 {channel.name} 已停用。" in response.content.decode()
