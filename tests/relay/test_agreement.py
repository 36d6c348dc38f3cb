"""The relay and the console agree: one change at a time, the token page, `/v1/models`, the
relay's answer and the "why did my call fail" advice all say the same thing.

Every change goes through the services, so caches are invalidated as in production; each
case starts from freshly seeded demo data (a new database per test)."""

import html
import re

import openai
import pytest
from django.test import Client
from django.urls import reverse

from groups.models import Channel, GroupAccess, Model, TokenGroup

pytestmark = [pytest.mark.live]

M = "claude-sonnet-4-5"  # a standard-tier, token-metered model served in ClaudeCode


def _lose_access(token):
    from groups.services import group_access_remove

    access = GroupAccess.objects.get(user_group=token.user.user_group, token_group=token.select_group)
    group_access_remove(actor=None, user_group=access.user_group, token_group=access.token_group)


def _allowlist_excludes(token):
    from tokens.services import token_update

    token_update(token=token, model_allowlist=["deepseek-v4"])


def _tier_raised(token):
    from groups.services import model_save

    assert "premium" not in token.user.user_group.model_tiers
    model_save(actor=None, model=Model.objects.get(name=M), tier="premium")


def _billing_mode_without_price(token):
    from tokens.services import token_update

    token_update(token=token, billing_mode="call")  # M has no per-call price


def _serving_channels(token):
    group = TokenGroup.objects.get(pk=token.select_group_id)
    channels = list(Channel.objects.filter(token_groups=group, channel_models__model__name=M).distinct())
    assert len(channels) >= 2
    return channels


def _channels_disabled(token):
    from groups.services import channel_set_enabled

    for channel in _serving_channels(token):
        channel_set_enabled(actor=None, channel=channel, enabled=False, reason="test")


def _channels_auto_disabled(token):
    """As a probe does when the upstream rejects the channel's key (groups/probes.py)."""
    for channel in _serving_channels(token):
        channel.auto_disabled = True
        channel.auto_disabled_reason = "Probe got HTTP 401"
        channel.save(update_fields=["auto_disabled", "auto_disabled_reason", "updated_at"])


def _group_disabled(token):
    from groups.services import token_group_save

    token_group_save(actor=None, token_group=token.select_group, enabled=False)


def _nothing(token):
    pass


# change, expected (status, OpenAI error code, refusal reason, phrase the advice must contain)
CASES = {
    "unchanged": (_nothing, None),
    "access": (
        _lose_access,
        (403, "permission_error", "access", f"may not use the token's groups that offer {M} (ClaudeCode)"),
    ),
    "allowlist": (
        _allowlist_excludes,
        (403, "permission_error", "allowlist", f"{M} is not in the token's model allowlist"),
    ),
    "tier": (_tier_raised, (403, "permission_error", "tier", f"{M} is a premium model")),
    "billing_mode": (
        _billing_mode_without_price,
        (403, "permission_error", "billing_mode", f"has no price for {M}"),
    ),
    "channels_disabled": (
        _channels_disabled,
        (404, "model_not_found", "not_offered", f"Model {M} is not in ClaudeCode; offered by Default"),
    ),
    "channels_auto_disabled": (
        _channels_auto_disabled,
        (404, "model_not_found", "not_offered", f"Model {M} is not in ClaudeCode; offered by Default"),
    ),
    "group_disabled": (
        _group_disabled,
        (404, "model_not_found", "not_offered", f"Model {M} is not in ClaudeCode; offered by Default"),
    ),
}


# Cases after which the token form's group panel still shows M under the select group: the
# group offers it; the refusal is about this caller (allowlist, tier, billing mode).
OFFERED_IN_FORM = {"unchanged", "allowlist", "tier", "billing_mode"}


def _form_panel_models(console: Client, token) -> set[str]:
    url = reverse("tokens:form_groups") + f"?select_group={token.select_group_id}"
    response = console.get(url)
    assert response.status_code == 200
    shown = re.search(r'models?: <span class="muted">([^<]*)</span>', response.content.decode())
    return set(shown.group(1).split(", ")) if shown else set()


def _token_page_models(console: Client, token) -> list[str]:
    response = console.get(reverse("tokens:detail", args=[token.pk]))
    assert response.status_code == 200
    return re.findall(r"&amp;model=([^\"&]+)\"", response.content.decode())


def _advice_page(console: Client, request_id: str) -> str:
    response = console.get(reverse("billing:usage_detail", args=[request_id]))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("case", list(CASES))
def test_token_page_models_list_relay_and_advice_agree(live, case):
    change, refusal = CASES[case]
    raw = live.make_key(user_group="default", select="ClaudeCode")
    token = live.token_of(raw)
    console = Client()
    console.force_login(token.user)
    client = live.openai(key=raw)
    assert M in _token_page_models(console, token)  # the starting point: M is callable

    change(token)

    page = _token_page_models(console, token)
    listed = [m.id for m in client.models.list()]
    assert sorted(page) == sorted(listed)  # the token page lists exactly what /v1/models lists
    assert sorted(m.id for m in live.anthropic(key=raw).models.list()) == sorted(listed)
    if M in listed:
        assert client.models.retrieve(M).id == M
    else:
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(M)
    assert (M in _form_panel_models(console, token)) == (case in OFFERED_IN_FORM)
    messages = [{"role": "user", "content": "hi"}]
    if refusal is None:
        reply = client.chat.completions.with_raw_response.create(model=M, messages=messages, max_tokens=5)
        assert M in page
        request_id = reply.headers["x-request-id"]
        assert live.record(request_id).refusal_reason == ""
        assert "This call succeeded in the ClaudeCode group." in _advice_page(console, request_id)
        return
    assert M not in page
    status, code, reason, phrase = refusal
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=M, messages=messages, max_tokens=5)
    assert caught.value.status_code == status
    assert caught.value.body["code"] == code
    request_id = caught.value.response.headers["x-request-id"]
    assert live.record(request_id).refusal_reason == reason
    advice = _advice_page(console, request_id)
    assert phrase in advice
    others = {other[3] for _, other in CASES.values() if other and other[3] != phrase}
    assert not [text for text in others if text in advice]  # names this cause, and no other
    assert "This call was not permitted for this token." not in advice  # not the generic text


def test_a_fallback_group_keeps_the_model_callable_everywhere_when_the_select_group_loses_it(live):
    raw = live.make_key(user_group="default", select="ClaudeCode", fallbacks=("Default",))
    token = live.token_of(raw)
    console = Client()
    console.force_login(token.user)
    _channels_disabled(token)

    client = live.openai(key=raw)
    assert M in _token_page_models(console, token)
    assert M in [m.id for m in client.models.list()]
    reply = client.chat.completions.with_raw_response.create(
        model=M, messages=[{"role": "user", "content": "hi"}], max_tokens=5
    )
    request_id = reply.headers["x-request-id"]
    rec = live.record(request_id)
    assert (rec.group_name, rec.fallback_used) == ("Default", True)
    assert "succeeded through the fallback group Default" in _advice_page(console, request_id)
