"""Operator pages for models (live price preview, confirmed price changes) and channels."""

from decimal import Decimal

from django.test import Client

from apiyi_admin.demo import USD_CNY_RATE as RATE
from groups.models import PRICE_FIELDS

CC = Decimal("0.95")  # the ClaudeCode multiplier


def _client(user):
    c = Client()
    c.force_login(user)
    return c


def _model_form(model, **changes):
    data = {f: getattr(model, f) for f in ("name", "kind", "tier", "description", "max_output_tokens")}
    data.update({f: getattr(model, f) for f in PRICE_FIELDS if getattr(model, f) is not None})
    data["enabled"] = "on"
    data.update(changes)
    return {k: str(v) for k, v in data.items()}


def test_live_preview_shows_final_price_in_every_group(operator):
    from groups.models import Model

    sonnet = Model.objects.get(name="claude-sonnet-4-5")
    c = _client(operator)
    page = c.post(
        f"/ops/models/{sonnet.pk}/preview/", _model_form(sonnet, input_usd_per_mtok="4")
    ).content.decode()
    # $4 × rate in Default (1×), × 0.95 in ClaudeCode
    assert f"¥{4 * RATE:.4f}" in page and f"¥{4 * RATE * Decimal('0.95'):.4f}" in page and "<html" not in page
    assert "Sora2Official" in page and "does not offer it" in page
    sonnet.refresh_from_db()
    assert sonnet.input_usd_per_mtok == Decimal("3")  # a preview saves nothing


def test_price_change_asks_for_confirmation(operator):
    from groups.models import Model

    sonnet = Model.objects.get(name="claude-sonnet-4-5")
    c = _client(operator)
    page = c.post(f"/ops/models/{sonnet.pk}/", _model_form(sonnet, input_usd_per_mtok="4")).content.decode()
    assert (
        'data-testid="confirm"' in page
        and f"¥{3 * RATE * Decimal('0.95'):.4f}" in page
        and f"¥{4 * RATE * Decimal('0.95'):.4f}" in page
    )
    sonnet.refresh_from_db()
    assert sonnet.input_usd_per_mtok == Decimal("3")
    c.post(f"/ops/models/{sonnet.pk}/", {**_model_form(sonnet, input_usd_per_mtok="4"), "confirm": "1"})
    sonnet.refresh_from_db()
    assert sonnet.input_usd_per_mtok == Decimal("4")


def test_non_price_change_and_new_model(operator):
    from groups.models import Model

    c = _client(operator)
    glm = Model.objects.get(name="glm-5.1")
    assert c.post(f"/ops/models/{glm.pk}/", _model_form(glm, description="GLM")).status_code == 302
    data = {
        "name": "kimi-k3",
        "kind": "text",
        "tier": "standard",
        "max_output_tokens": "8192",
        "input_usd_per_mtok": "0.6",
        "output_usd_per_mtok": "2.5",
        "enabled": "on",
    }
    assert c.post("/ops/models/new/", data).status_code == 302
    assert Model.objects.filter(name="kimi-k3").exists()
    results = c.get("/ops/models/?q=kimi").content.decode().split('<div id="results">')[1]
    assert "kimi-k3" in results and "glm-5.1" not in results


def test_channels_list_shows_live_state(operator):
    from groups.models import Channel
    from groups.saturation import cooldown_start, inflight_acquire, verdict_set

    ch = Channel.objects.get(name="claude-official")
    verdict_set(ch.pk, "saturated")
    inflight_acquire(ch.pk, 0)
    cooldown_start(ch.pk, 30)
    page = _client(operator).get("/ops/channels/?group=ClaudeCode").content.decode()
    row = page.split(">claude-official<")[1].split("</tr>")[0]
    assert "saturated" in row and "s</span>" in row
    assert "sora" not in page.split("<tbody>")[1]


def test_channel_toggle_and_edit_keeps_the_key(operator):
    from accounts.models import AuditLog
    from groups.models import Channel

    ch = Channel.objects.get(name="wan")
    c = _client(operator)
    page = c.post(f"/ops/channels/{ch.pk}/toggle/").content.decode()  # one POST only asks
    ch.refresh_from_db()
    assert ch.enabled and 'data-testid="confirm"' in page
    # wan is the only channel of the Wan group: the page names what would lose all capacity
    assert "is the last enabled channel for" in page and "in Wan" in page
    c.post(f"/ops/channels/{ch.pk}/toggle/", {"confirm": "1"})
    ch.refresh_from_db()
    assert not ch.enabled
    assert AuditLog.objects.filter(action="channel.disable").exists()
    key = ch.api_key
    data = {
        "name": "wan",
        "kind": "video",
        "base_url": ch.base_url,
        "priority": "3",
        "weight": "2",
        "max_concurrency": "4",
        "enabled": "on",
        "allow_private_network": "on",
        "probe_interval_s": "15",
        "latency_threshold_ms": "20000",
        "token_groups": [g.pk for g in ch.token_groups.all()],
        "models": [m.pk for m in ch.served_models.all()],
    }
    assert c.post(f"/ops/channels/{ch.pk}/", data).status_code == 302
    ch.refresh_from_db()
    assert ch.priority == 3 and ch.max_concurrency == 4 and ch.api_key == key
    page = c.get(f"/ops/channels/{ch.pk}/").content.decode()
    assert key not in page  # the upstream key is write-only


def test_channel_latency_chart_from_probe_history(operator):
    from django.utils import timezone

    from groups.models import Channel, ChannelHealth

    ch = Channel.objects.get(name="claude-aws")
    now = timezone.now()
    for i, (verdict, ms) in enumerate([("healthy", 200), ("saturated", 900), ("healthy", 300)]):
        ChannelHealth.objects.create(
            channel=ch,
            at=now - timezone.timedelta(seconds=30 * (3 - i)),
            verdict=verdict,
            routing_verdict=verdict,
            latency_ms=ms,
            status_code=429 if verdict == "saturated" else 200,
        )
    page = _client(operator).get(f"/ops/channels/{ch.pk}/").content.decode()
    assert "<polyline" in page and "saturated at" in page and "900 ms" in page
    assert "Recent 429s" in page


def test_probe_now_reports_a_verdict(simulator, operator):
    from groups.models import Channel, ChannelHealth

    ch = Channel.objects.get(name="claude-aws")
    c = _client(operator)
    response = c.post(f"/ops/channels/{ch.pk}/probe/", follow=True)
    assert "Probe of claude-aws: healthy" in response.content.decode()
    assert ChannelHealth.objects.filter(channel=ch, verdict="healthy").exists()


def _status(html, channel_name):
    row = html.split(f">{channel_name}<")[1].split("</tr>")[0]
    return row.split('data-testid="channel-status">')[1].split("<")[0]


def test_every_page_and_the_api_agree_on_a_saturated_channel(operator):
    from rest_framework.test import APIClient

    from groups.models import Channel, TokenGroup
    from groups.saturation import cooldown_start

    ch = Channel.objects.get(name="claude-official")
    cooldown_start(ch.pk, 30)  # an upstream 429: the channel is saturated, though enabled
    group = TokenGroup.objects.get(name="ClaudeCode")
    c = _client(operator)
    channels_page = _status(c.get("/ops/channels/?group=ClaudeCode").content.decode(), "claude-official")
    group_page = _status(c.get(f"/ops/token-groups/{group.pk}/").content.decode(), "claude-official")
    detail = c.get(f"/ops/channels/{ch.pk}/").content.decode()
    detail_page = detail.split('data-testid="channel-status">')[1].split("<")[0]
    api = APIClient()
    api.force_authenticate(operator)
    health = api.get(f"/api/v1/operator/channel-health/{ch.pk}/").json()
    assert channels_page == group_page == detail_page == "saturated"
    assert health["saturated"] is True


def test_a_gemini_channel_can_be_created_from_the_form(operator):
    from groups.models import Channel, Model, TokenGroup

    c = _client(operator)
    assert 'value="gemini"' in c.get("/ops/channels/new/").content.decode()
    data = {
        "name": "gemini-direct",
        "kind": "gemini",
        "base_url": "https://generativelanguage.googleapis.com",
        "api_key": "AIza-test-key-123",
        "priority": "0",
        "weight": "1",
        "max_concurrency": "0",
        "enabled": "on",
        "probe_interval_s": "30",
        "latency_threshold_ms": "20000",
        "token_groups": [TokenGroup.objects.get(name="Default").pk],
        "models": [Model.objects.get(name="gemini-2.5-flash").pk],
    }
    assert c.post("/ops/channels/new/", data).status_code == 302
    channel = Channel.objects.get(name="gemini-direct")
    assert (channel.kind, channel.api_key) == ("gemini", "AIza-test-key-123")
    assert c.post("/ops/channels/new/", dict(data, name="bad-kind", kind="palm")).status_code == 200
    assert not Channel.objects.filter(name="bad-kind").exists()
